"""The sandbox of one pytest session: started once, on its own event loop in a background thread
(the gateways and the token service are asyncio servers; the tests are synchronous), and stopped
when the session ends.

Everything the tests ask of it crosses into that loop (`call`, `run`), so the fabric is only ever
touched from one thread.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, TypeVar

from trustproof.errors import SandboxError
from trustproof.identity import Svid
from trustproof.probes.model import Case, CaseResult, judge
from trustproof.sandbox.background import BackgroundLoop
from trustproof.sandbox.controller import Sandbox
from trustproof.sandbox.endpoints import Endpoint
from trustproof.sandbox.view import LiveView
from trustproof.spec import Spec, load_spec
from trustproof.suite.runner import execute

T = TypeVar("T")
CALL_TIMEOUT_SECONDS = 120.0  # a start, a stop or one case; nothing the plugin waits for is longer


class LiveSandbox:
    """A running `Sandbox` for synchronous tests. `sandbox` is the real one (endpoints, spec,
    audit); `token`, `cert` and `run_case` are safe to call from the test's thread."""

    def __init__(self, spec: Spec, run_dir: Path) -> None:
        self.spec = spec
        self.run_dir = run_dir
        self.sandbox = Sandbox(spec, run_dir=run_dir)
        self._background: BackgroundLoop | None = None
        self._views = AsyncExitStack()  # the one `LiveView` of the session, opened on first use
        self._view: LiveView | None = None
        self._started = False

    @classmethod
    def start(cls, spec_path: Path, run_dir: Path) -> LiveSandbox:
        """Load the spec and start everything; all or nothing (a failed start stops what it
        started and raises `SandboxError`/`SpecError`)."""
        live = cls(load_spec(spec_path), run_dir)
        live._background = BackgroundLoop("trustproof-pytest")
        try:
            live.run(live.sandbox.start())
        except BaseException:
            live._close_loop()
            raise
        live._started = True
        return live

    # -- crossing into the sandbox's loop ------------------------------------------------------

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the sandbox's loop and wait for its result."""
        if self._background is None:
            coro.close()
            raise SandboxError("the sandbox of this pytest session is not running")
        return self._background.run(coro, CALL_TIMEOUT_SECONDS)

    def call(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call `func` on the sandbox's loop thread and wait for its result."""

        async def inside() -> T:
            return func(*args, **kwargs)

        return self.run(inside())

    # -- what tests use ------------------------------------------------------------------------

    @property
    def endpoints(self) -> dict[str, Endpoint]:
        return self.sandbox.endpoints

    def url(self, name: str) -> str:
        """Where callers reach `name`: its gateway (or the service itself with gateway: none)."""
        try:
            return self.sandbox.endpoints[name].url
        except KeyError:
            known = ", ".join(self.sandbox.endpoints)
            raise SandboxError(f"no endpoint named {name!r}", f"expected one of: {known}") from None

    def bundle_pem(self) -> bytes:
        """The CA bundle every sandbox certificate chains to."""
        fabric = self.sandbox.fabric
        if fabric is None:
            raise SandboxError("the sandbox is not running")
        return fabric.ca.bundle_pem()

    def token(self, name: str, audience: str, *, bound_to: Svid | None = None) -> str:
        """A fresh token for persona or workload `name` to call `audience`; bound to the
        certificate `bound_to` (gateways require that of workload tokens)."""
        thumb = bound_to.x5t_s256 if bound_to is not None else None
        return self.call(self.sandbox.token, name, audience, cnf_x5t_s256=thumb)

    def cert(self, name: str) -> Svid:
        """A fresh X.509-SVID for persona or workload `name`."""
        return self.call(self.sandbox.cert, name)

    def run_case(self, case: Case) -> CaseResult:
        """One generated case, judged (a crashing probe is an ``error`` verdict, never a pass)."""

        async def inside() -> CaseResult:
            if self._view is None:
                self._view = await self._views.enter_async_context(LiveView.open(self.sandbox))
            result = await execute(case, self._view)
            return CaseResult(case, result, judge(case, result))

        return self.run(inside())

    def stop(self) -> None:
        """Stop everything (idempotent); key material is removed, logs stay in `run_dir`."""
        if not self._started:
            return
        self._started = False
        try:
            self._view = None
            self.run(self._views.aclose())
            self.run(self.sandbox.stop())
        finally:
            self._close_loop()

    def _close_loop(self) -> None:
        background, self._background = self._background, None
        if background is not None:
            background.close()
