"""The running controller's local API, on a unix socket inside the private run directory.

Only someone who can open the 0700 run directory can reach it (the user who started the sandbox,
or root). It serves `trustproof status`, `token`, `cert` and `down`:

    GET  /status                      the state, with each process's liveness
    POST /token   {name, audience, ttl?}   a fresh access token
    POST /cert    {name}              a fresh X.509-SVID (PEM chain, key, bundle)
    POST /revoke  {name} | {serial}   revoke a workload's current SVID (then renewed) or a serial
                                      (hex); every CRL file rewritten, services with reload told
    POST /shutdown                    stop everything
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from trustproof.errors import TrustproofError, UsageError
from trustproof.sandbox import control_client
from trustproof.sandbox.control_client import controller_alive, live_status
from trustproof.sandbox.controller import Sandbox
from trustproof.sandbox.readiness import healthy, https_ok
from trustproof.sandbox.revocation import parse_serial, revoke_by_name, revoke_in_sandbox

__all__ = ["ControlServer", "ProbeHandler", "controller_alive", "live_status", "request"]

ProbeHandler = Callable[[Sandbox, dict[str, Any]], Awaitable[dict[str, Any]]]


class ControlServer:
    def __init__(self, sandbox: Sandbox, on_probe: ProbeHandler | None = None) -> None:
        self.sandbox = sandbox
        self.on_probe = on_probe  # the suite, injected by the driver (sandbox does not import it)
        self.shutdown = asyncio.Event()
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024)
        app.router.add_get("/status", self._status)
        app.router.add_post("/token", self._token)
        app.router.add_post("/cert", self._cert)
        app.router.add_post("/revoke", self._revoke)
        app.router.add_post("/shutdown", self._shutdown)
        app.router.add_post("/probe", self._probe)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        path = self.sandbox.run.control_socket
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        await web.UnixSite(self._runner, str(path)).start()
        path.chmod(0o600)

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _status(self, _: web.Request) -> web.Response:
        state = live_status(self.sandbox.state())
        services = self.sandbox.spec.services
        names = [name for name in state["endpoints"] if name in services]
        checks = [
            healthy(
                services[name].host,
                services[name].port,
                services[name].health,
                self.sandbox.connector(name),  # inside its namespace on the isolated backend
            )
            for name in names
        ]
        fabric = self.sandbox.fabric
        if fabric is not None and "token-service" in state["endpoints"]:
            # Served by this process: healthy when it answers discovery over TLS right now.
            names.append("token-service")
            checks.append(https_ok(fabric.discovery_url, fabric.ca.bundle_pem()))
        for name, ok in zip(names, await asyncio.gather(*checks), strict=True):
            state["endpoints"][name]["healthy"] = ok
        return web.json_response(state)

    async def _token(self, request: web.Request) -> web.Response:
        body = await _json(request)
        ttl = body.get("ttl")
        try:
            cnf = body.get("cnf_x5t_s256")
            token = self.sandbox.token(
                str(body.get("name")),
                str(body.get("audience")),
                timedelta(seconds=float(ttl)) if ttl else None,
                cnf_x5t_s256=str(cnf) if cnf else None,
            )
        except TrustproofError as exc:
            return _refusal(exc)
        return web.json_response({"access_token": token})

    async def _cert(self, request: web.Request) -> web.Response:
        body = await _json(request)
        try:
            svid = self.sandbox.cert(str(body.get("name")))
        except TrustproofError as exc:
            return _refusal(exc)
        assert self.sandbox.fabric is not None  # noqa: S101 (cert() checked it)
        return web.json_response(
            {
                "spiffe_id": str(svid.spiffe_id),
                "cert_pem": svid.cert_chain_pem().decode(),
                "key_pem": svid.key_pem().decode(),
                "bundle_pem": self.sandbox.fabric.ca.bundle_pem().decode(),
                "not_after": svid.not_after.isoformat(),
                "serial": f"{svid.serial:x}",
            }
        )

    async def _revoke(self, request: web.Request) -> web.Response:
        body = await _json(request)
        name, serial = body.get("name"), body.get("serial")
        try:
            if isinstance(name, str) and name and serial is None:
                done = revoke_by_name(self.sandbox, name)
            elif isinstance(serial, str) and name is None:
                done = revoke_in_sandbox(self.sandbox, parse_serial(serial))
            else:
                raise UsageError(
                    "expected exactly one of a workload name or a serial",
                    "`trustproof cert revoke NAME` or `trustproof cert revoke --serial HEX`",
                )
        except TrustproofError as exc:
            return _refusal(exc)
        return web.json_response(done.to_json())

    async def _probe(self, request: web.Request) -> web.Response:
        if self.on_probe is None:
            return web.json_response({"error": "this controller cannot run the suite"}, status=501)
        body = await _json(request)
        reply = await self.on_probe(self.sandbox, body)
        return web.json_response(reply)

    async def _shutdown(self, _: web.Request) -> web.Response:
        self.shutdown.set()
        return web.json_response({"stopping": True})


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _refusal(exc: TrustproofError) -> web.Response:
    """The controller's answer to a request it cannot do: the error, its hint and the exit code
    the command line must end with (2 for a name the spec does not know, 3 for the sandbox)."""
    body = {"error": exc.message, "hint": exc.hint, "exit_code": exc.exit_code}
    return web.json_response(body, status=400)


async def request(
    socket_path: Path,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    timeout: float = 10,
) -> dict[str, Any]:
    """`control_client.request` for async callers (in a thread: it blocks)."""
    return await asyncio.to_thread(control_client.request, socket_path, method, path, body, timeout)
