"""One running sandbox per spec for the Chaos Toolkit activities, in this process: started on
first use on a background event loop, its `LiveView` kept open, the faults in force kept by name
until their rollback closes them."""

from __future__ import annotations

import atexit
import contextlib
import tempfile
import threading
from collections.abc import Coroutine
from contextlib import AbstractAsyncContextManager, AbstractContextManager, AsyncExitStack
from pathlib import Path
from typing import Any, TypeVar

from trustproof.chaos.scenario import ScenarioEnv, ScenarioResult
from trustproof.errors import UsageError
from trustproof.sandbox.background import BackgroundLoop
from trustproof.sandbox.controller import Sandbox
from trustproof.sandbox.view import LiveView

T = TypeVar("T")
TIMEOUT_S = 300.0


class Session:
    """A started sandbox, its view, and the open faults (name -> what closes it)."""

    def __init__(self, spec: Path) -> None:
        self.spec = spec
        self.loop = BackgroundLoop(f"trustproof-ctk-{spec.stem}")
        self.run_dir = Path(tempfile.mkdtemp(prefix="trustproof-ctk-")) / "run"
        self.sandbox = Sandbox.from_file(spec, run_dir=self.run_dir)
        self._stack = AsyncExitStack()
        self.faults: dict[str, AsyncExitStack] = {}
        self.last: ScenarioResult | None = None
        try:
            self.run(self.sandbox.start())
            self.view: LiveView = self.run(
                self._stack.enter_async_context(LiveView.open(self.sandbox))
            )
        except BaseException:
            self.loop.close()
            raise

    @property
    def env(self) -> ScenarioEnv:
        return ScenarioEnv(self.view)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run(coro, TIMEOUT_S)

    def hold(
        self, name: str, fault: AbstractAsyncContextManager[Any] | AbstractContextManager[Any]
    ) -> None:
        """Enter `fault` and keep it in force under `name` until `release(name)`."""
        if name in self.faults:
            raise UsageError(f"the fault {name!r} is already in force", "roll it back first")

        async def enter() -> AsyncExitStack:
            stack = AsyncExitStack()
            if isinstance(fault, AbstractAsyncContextManager):
                await stack.enter_async_context(fault)
            else:
                stack.enter_context(fault)
            return stack

        self.faults[name] = self.run(enter())

    def release(self, name: str) -> bool:
        """Undo the fault held under `name`; False when none was."""
        stack = self.faults.pop(name, None)
        if stack is None:
            return False
        self.run(stack.aclose())
        return True

    def close(self) -> None:
        try:
            for name in list(self.faults):
                self.release(name)
            self.run(self._stack.aclose())
            self.run(self.sandbox.stop())
        finally:
            self.loop.close()


_SESSIONS: dict[Path, Session] = {}
_LOCK = threading.Lock()


def session(spec: str) -> Session:
    """The running sandbox of `spec`, started on first use."""
    path = Path(spec).resolve()
    with _LOCK:
        if path not in _SESSIONS:
            if not path.is_file():
                raise UsageError(f"no spec at {spec}", "give the path of a trustproof.yaml")
            _SESSIONS[path] = Session(path)
        return _SESSIONS[path]


def stop(spec: str) -> bool:
    """Stop the sandbox of `spec` (its faults rolled back first); False when none ran."""
    with _LOCK:
        found = _SESSIONS.pop(Path(spec).resolve(), None)
    if found is None:
        return False
    found.close()
    return True


@atexit.register
def _stop_all() -> None:
    for path in list(_SESSIONS):
        with contextlib.suppress(Exception):
            stop(str(path))
