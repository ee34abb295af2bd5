"""The live view's third-party trust faults (`SandboxView.jwks_wrong_keys`, `crl_fault`): what the
servers trustproof did not write read — the token service's published JWK Set, the key files and
the CRL file next to each service's SVID — broken on purpose, and put back on the way out, whatever
happened inside.

* wrong keys: the token service is served again on its own address with ``/jwks.json`` answering
  the wrong keys, and each service's JWKS and PEM key files hold them; the services are told
  (their ``reload:``). The gateways hold the signing keys in memory and are not touched.
* CRL: each service's ``crl.pem`` replaced by a stale CRL (the CA's own, issued two hours ago,
  its nextUpdate an hour past) or removed; the services are told.

The sandbox's own file watch is brought up to date first — the faulted services' files written as
they are now, the services told once, by the fault — and leaves their files alone until the
rollback (a rotation or a revocation meanwhile does not put the real files back under the fault).
Each reload is awaited (`trustproof.sandbox.reloads`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractContextManager, asynccontextmanager, nullcontext
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from trustproof.errors import SandboxError
from trustproof.fabric import TrustFabric
from trustproof.sandbox import reloads
from trustproof.sandbox.controller import Sandbox
from trustproof.sandbox.services import write_crl
from trustproof.sandbox.trustfiles import (
    CRL_FILE,
    JWKS_FILE,
    PUBLIC_MODE,
    SIGNING_KEY_CURRENT_FILE,
    SIGNING_KEY_PREVIOUS_FILE,
    SIGNING_KEYS_FILE,
    write_atomically,
    write_trust_files,
)
from trustproof.sandbox.view_chaos import _reloaded, _serve_again, serve_with
from trustproof.tokenservice.server import TokenServer
from trustproof.view.chaos import CrlMode, WrongKeys

STALE_CRL_AGE = timedelta(hours=2)  # issued then; nextUpdate half of it ago


def _caught_up(sandbox: Sandbox, fabric: TrustFabric, services: tuple[str, ...]) -> dict[str, Path]:
    """Where each of the `services`' trust files are, written as they are now but the services
    not told: the fault's own reload (one signal) reads them. Called while the fault holds their
    files, so the file watch brought up to date here rewrites and reloads the others only. A
    catch-up reload sent back to back with the fault's would race it: a server running a reload
    nested inside another (Python's signal handlers do: the older one finishes last and wins)
    would keep the files of before the fault — the PyJWT twin kept its CRL, half the runs."""
    if sandbox.trust_files is not None:
        sandbox.trust_files.check()
    directories = {name: sandbox.rotators[name].files.directory for name in services}
    for directory in directories.values():
        write_trust_files(directory, fabric.keys, fabric.ca.crl_pem())
    return directories


def _held(sandbox: Sandbox, services: tuple[str, ...]) -> AbstractContextManager[None]:
    """The sandbox's file watch leaves the `services`' files alone while a fault holds them: a
    tick (a revocation, a key pruned after an earlier experiment) would put the real files back
    under the fault."""
    watch = sandbox.trust_files
    return watch.held(services) if watch is not None else nullcontext()


def _write_wrong_keys(directory: Path, keys: WrongKeys) -> None:
    write_atomically(directory / JWKS_FILE, keys.jwks, PUBLIC_MODE)
    write_atomically(directory / SIGNING_KEYS_FILE, b"".join(keys.pems), PUBLIC_MODE)
    write_atomically(directory / SIGNING_KEY_CURRENT_FILE, keys.pems[0], PUBLIC_MODE)
    write_atomically(directory / SIGNING_KEY_PREVIOUS_FILE, keys.pems[-1], PUBLIC_MODE)


@asynccontextmanager
async def jwks_wrong_keys(
    sandbox: Sandbox, services: tuple[str, ...], keys: WrongKeys
) -> AsyncIterator[None]:
    """The token service publishing `keys` and the `services`' key files holding them; the real
    ones back (and the services told again) afterwards."""
    fabric = sandbox.fabric
    if fabric is None:
        raise SandboxError("the sandbox is not running")

    @web.middleware
    async def publishing(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path == "/jwks.json":
            return web.Response(body=keys.jwks, content_type="application/json")
        response: web.StreamResponse = await handler(request)
        return response

    with _held(sandbox, services):
        directories = _caught_up(sandbox, fabric, services)
        await fabric.server.close()
        wrong: TokenServer | None = None
        try:
            wrong = await serve_with(fabric, publishing)
            async with reloads.awaited(sandbox, services):
                for name, directory in directories.items():
                    _write_wrong_keys(directory, keys)
                    await _reloaded(sandbox, name)
            yield
        finally:
            async with reloads.awaited(sandbox, services):
                for name, directory in directories.items():
                    write_trust_files(directory, fabric.keys, fabric.ca.crl_pem())
                    await _reloaded(sandbox, name)
            if wrong is not None:
                await wrong.close()
            await _serve_again(fabric)


@asynccontextmanager
async def crl_fault(
    sandbox: Sandbox, services: tuple[str, ...], mode: CrlMode
) -> AsyncIterator[None]:
    """The `services`' CRL file stale or removed, the services told; the CA's current CRL back
    (and the services told again) afterwards."""
    fabric = sandbox.fabric
    if fabric is None:
        raise SandboxError("the sandbox is not running")
    with _held(sandbox, services):
        directories = _caught_up(sandbox, fabric, services)
        try:
            stale = fabric.ca.stale_crl_pem(STALE_CRL_AGE) if mode == "stale" else b""
            async with reloads.awaited(sandbox, services):
                for name, directory in directories.items():
                    if mode == "stale":
                        write_atomically(directory / CRL_FILE, stale, PUBLIC_MODE)
                    else:
                        (directory / CRL_FILE).unlink(missing_ok=True)
                    await _reloaded(sandbox, name)
            yield
        finally:
            async with reloads.awaited(sandbox, services):
                for name, directory in directories.items():
                    write_crl(fabric.ca, directory)
                    await _reloaded(sandbox, name)
