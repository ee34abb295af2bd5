"""The client of the running controller's local API (`trustproof.sandbox.control`), and what
`status` tells about liveness — standard library only, so that `trustproof token`, `cert` and
`status` start without importing the sandbox, aiohttp or the trust fabric.
"""

from __future__ import annotations

import http.client
import json
import socket
from pathlib import Path
from typing import Any

from trustproof.errors import SandboxError
from trustproof.sandbox.procinfo import group_alive, running, start_time

MAX_REPLY_BYTES = 16 * 1024 * 1024


class _UnixConnection(http.client.HTTPConnection):
    """HTTP/1.1 over the controller's unix socket."""

    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("trustproof", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(str(self._path))
        except OSError:
            sock.close()
            raise
        self.sock = sock


def request(
    socket_path: Path,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    timeout: float = 10,
) -> dict[str, Any]:
    """Call the controller; its JSON answer. `SandboxError` when nothing answers there, or with
    the controller's own error (its ``exit_code`` kept: 2 for a name the spec does not know)."""
    if not socket_path.exists():
        raise SandboxError(
            f"no sandbox is running in {socket_path.parent}",
            "start one with `trustproof up --detach`, or pass --run-dir",
        )
    connection = _UnixConnection(socket_path, timeout)
    payload = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"} if payload is not None else {}
    try:
        connection.request(method, path, body=payload, headers=headers)
        raw = connection.getresponse().read(MAX_REPLY_BYTES + 1)
        if len(raw) > MAX_REPLY_BYTES:
            raise ValueError("reply too large")
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("reply is not a JSON object")
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise SandboxError(
            f"the sandbox controller in {socket_path.parent} does not answer "
            f"({type(exc).__name__})",
            "it may have been killed: `trustproof down` cleans up",
        ) from None
    finally:
        connection.close()
    if "error" in data:
        error = SandboxError(str(data["error"]), str(data.get("hint", "")))
        if isinstance(data.get("exit_code"), int):
            error.exit_code = data["exit_code"]  # e.g. 2 for a selection matching nothing
        raise error
    return data


def controller_alive(state: dict[str, Any]) -> bool:
    """Whether the run's controller still runs: its pid is alive *and* is the same process
    (same kernel start time), so a reused pid is never mistaken for it, nor killed."""
    pid = state.get("controller_pid")
    if not isinstance(pid, int) or not running(pid):
        return False
    recorded = state.get("controller_start_time")
    return recorded is None or start_time(pid) == recorded


def live_status(state: dict[str, Any]) -> dict[str, Any]:
    """The state with each process's liveness checked now.

    The token service runs inside the controller, so it runs exactly when the controller does
    (same pid *and* start time; a state written before the token service had a pid says so too).
    Every other endpoint is its own process group.
    """
    controller_running = controller_alive(state)
    for endpoint in state.get("endpoints", {}).values():
        pid = endpoint.get("pid")
        if endpoint.get("kind") == "token-service":
            endpoint["running"] = controller_running
        else:
            endpoint["running"] = bool(pid) and group_alive(int(pid))
    state["controller_running"] = controller_running
    return state
