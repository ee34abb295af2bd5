"""The plugin's state for one pytest session: which spec, where the run directory goes, and the
sandbox, started on first use and stopped when the session ends.

Light on purpose: the plugin is loaded by every pytest run in an environment where trustproof is
installed, and must cost nothing until a spec is configured; the sandbox modules are imported only
when a test first asks for the sandbox.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from trustproof.pytest_plugin.live import LiveSandbox


class PluginSession:
    """The spec of this session and its sandbox (started once, lazily; a failed start is
    remembered, so every test that needs it fails with the same message instead of retrying)."""

    def __init__(self, spec_path: Path, run_dir: Path | None, cases: bool) -> None:
        self.spec_path = spec_path
        self.run_dir = run_dir
        self.cases = cases
        self.collected = False
        self._live: LiveSandbox | None = None
        self._failure: str | None = None

    def live(self) -> LiveSandbox:
        """The running sandbox; fails the calling test (not the session) when it cannot start."""
        if self._failure is not None:
            pytest.fail(self._failure, pytrace=False)
        if self._live is None:
            from trustproof.errors import TrustproofError  # noqa: PLC0415 (see the docstring)
            from trustproof.pytest_plugin.live import LiveSandbox  # noqa: PLC0415
            from trustproof.scrub import scrub  # noqa: PLC0415

            if self.run_dir is None:
                self.run_dir = Path(tempfile.mkdtemp(prefix="trustproof-pytest-"))
            try:
                self._live = LiveSandbox.start(self.spec_path, self.run_dir)
            except TrustproofError as exc:
                self._failure = scrub(
                    f"trustproof: the sandbox of {self.spec_path} could not start:\n{exc}"
                )
            if self._live is None:  # failed outside the except block: no chained traceback
                pytest.fail(self._failure or "trustproof: the sandbox did not start", pytrace=False)
        return self._live

    def stop(self) -> None:
        if self._live is not None:
            live, self._live = self._live, None
            live.stop()


SESSION = pytest.StashKey[PluginSession]()
