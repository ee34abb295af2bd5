"""The event loop choice (`trustproof.loop`): uvloop where installed, asyncio's loop otherwise,
``TRUSTPROOF_LOOP`` to choose by hand; the command line and the `with Sandbox` thread use it."""

from __future__ import annotations

import asyncio
import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from click.testing import CliRunner

import trustproof.cli.sandbox as cli_sandbox
from trustproof import loop
from trustproof.errors import SandboxError, UsageError
from trustproof.sandbox.background import BackgroundLoop

uvloop = pytest.importorskip("uvloop", reason="uvloop is not installed")


async def _kind() -> str:
    running = asyncio.get_running_loop()
    return "uvloop" if isinstance(running, uvloop.Loop) else type(running).__module__


def _without_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.import_module

    def fake(name: str, package: str | None = None) -> ModuleType:
        if name == "uvloop":
            raise ImportError("No module named 'uvloop'")
        return real(name, package)

    monkeypatch.setattr(loop.importlib, "import_module", fake)


@pytest.mark.parametrize("setting", ["", "auto", "AUTO", "uvloop"])
def test_uvloop_is_chosen_when_installed(setting: str) -> None:
    kind, factory = loop.choose({loop.ENV: setting} if setting else {})
    assert kind == "uvloop"
    made = factory()
    try:
        assert isinstance(made, uvloop.Loop)
    finally:
        made.close()


def test_asyncio_when_asked() -> None:
    kind, factory = loop.choose({loop.ENV: "asyncio"})
    assert kind == "asyncio"
    made = factory()
    try:
        assert not isinstance(made, uvloop.Loop)
    finally:
        made.close()


def test_falls_back_to_asyncio_without_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    _without_uvloop(monkeypatch)
    assert loop.choose({})[0] == "asyncio"
    with pytest.raises(UsageError, match="uvloop is not installed") as caught:
        loop.choose({loop.ENV: "uvloop"})
    assert "unset the variable" in caught.value.hint


def test_an_unknown_setting_is_a_clear_error() -> None:
    with pytest.raises(UsageError, match="TRUSTPROOF_LOOP='trio' is not an event loop") as caught:
        loop.choose({loop.ENV: "trio"})
    assert "auto, uvloop, asyncio" in caught.value.hint


def test_run_uses_the_chosen_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(loop.ENV, raising=False)
    assert loop.run(_kind()) == "uvloop"
    monkeypatch.setenv(loop.ENV, "asyncio")
    assert loop.run(_kind()) == "asyncio.unix_events"


def test_run_with_a_bad_setting_closes_the_coroutine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(loop.ENV, "nope")
    coro = _kind()
    with pytest.raises(UsageError):
        loop.run(coro)
    assert coro.cr_frame is None  # closed, not left "never awaited"


def test_the_with_sandbox_thread_runs_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(loop.ENV, raising=False)
    background = BackgroundLoop("test-loop")
    try:
        assert background.run(_kind(), timeout=10) == "uvloop"
    finally:
        background.close()


def test_the_command_line_runs_uvloop(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(loop.ENV, raising=False)
    seen: list[str] = []

    async def control_request(*args: Any, **kwargs: Any) -> dict[str, Any]:
        seen.append(await _kind())
        raise SandboxError("no sandbox here", "start one")

    monkeypatch.setattr(cli_sandbox, "control_request", control_request)
    result = CliRunner().invoke(cli_sandbox.probe, ["--run-dir", str(tmp_path)])
    assert result.exit_code != 0
    assert seen == ["uvloop"]
