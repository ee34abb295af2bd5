"""The live view's trust faults (`SandboxView.token_service_fault`, `skew_clock`, `hot_reload`,
...): the one place the chaos experiments' faults touch the running sandbox. Each fault is a
context manager whose exit puts back what it changed, whatever happened inside.

The token service is served by this process (`fabric.server`). A fault stops it — its listening
socket closed, open connections dropped — and, for ``error`` and ``slow``, serves the same
application on the same address with a middleware that answers 500 or waits first. The real one
is served again on the same address afterwards (a fresh socket; `SO_REUSEADDR`), presenting the
token service's current certificate and following its rotation again.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from trustproof.audit import AuditCompletion, AuditEvent, AuditUnavailable
from trustproof.clock import SkewedClock
from trustproof.errors import SandboxError
from trustproof.fabric import TrustFabric
from trustproof.policy.cedar import CedarPolicyEngine
from trustproof.policy.entities import Directory
from trustproof.policy.reload import PolicyReloader
from trustproof.policy.variants import variant_bundle
from trustproof.sandbox import netfault
from trustproof.sandbox.controller import Sandbox
from trustproof.sandbox.faultproxy import FaultProxy
from trustproof.sandbox.trustfiles import (
    JWKS_FILE,
    PUBLIC_MODE,
    SIGNING_KEY_CURRENT_FILE,
    SIGNING_KEY_PREVIOUS_FILE,
    SIGNING_KEYS_FILE,
    write_atomically,
    write_trust_files,
)
from trustproof.scrub import Secret
from trustproof.tls import server_context
from trustproof.tokenservice.core import TOKEN_SERVICE_NAME, oauth_error
from trustproof.tokenservice.protocol import OAuthAppRunner
from trustproof.tokenservice.server import (
    TokenServer,
    bind_loopback,
    build_app,
    respond,
    serve_token_service,
)
from trustproof.view.chaos import IdpFault, NetFault, NetPath, PolicyReload, TokenFetch


def _address(fabric: TrustFabric) -> tuple[str, int]:
    where = urlsplit(fabric.url)
    return where.hostname or "127.0.0.1", where.port or 443


async def _serve_faulty(fabric: TrustFabric, fault: IdpFault) -> TokenServer:
    """The token service's application behind a middleware that fails every request."""

    @web.middleware
    async def failing(request: web.Request, handler: Any) -> web.StreamResponse:
        if fault.mode == "error":
            return respond(oauth_error(500, "server_error", "injected failure (chaos)"))
        await asyncio.sleep(fault.delay_s)
        response: web.StreamResponse = await handler(request)
        return response

    return await serve_with(fabric, failing)


async def serve_with(fabric: TrustFabric, middleware: Any) -> TokenServer:
    """The token service's application behind `middleware`, on the token service's address."""
    app = build_app(fabric.service, fabric.ca, fabric.clock)
    app.middlewares.append(middleware)
    svid = fabric.rotators[TOKEN_SERVICE_NAME].current
    context = server_context(svid, fabric.ca.bundle_pem())
    runner = OAuthAppRunner(app, access_log=None, auto_decompress=False)
    await runner.setup()
    try:
        await web.SockSite(runner, bind_loopback(*_address(fabric)), ssl_context=context).start()
    except BaseException:
        await runner.cleanup()
        raise
    return TokenServer(runner, fabric.url, context)


@asynccontextmanager
async def token_service_fault(fabric: TrustFabric, fault: IdpFault) -> AsyncIterator[None]:
    await fabric.server.close()
    faulty: TokenServer | None = None
    try:
        if fault.mode != "stopped":
            faulty = await _serve_faulty(fabric, fault)
        yield
    finally:
        if faulty is not None:
            await faulty.close()
        await _serve_again(fabric)


async def _serve_again(fabric: TrustFabric) -> None:
    """The token service on its own address again, following its certificate's rotation."""
    rotator = fabric.rotators[TOKEN_SERVICE_NAME]
    sock = bind_loopback(*_address(fabric))
    fabric.server = await serve_token_service(
        fabric.service, fabric.ca, rotator.current, fabric.clock, sock
    )
    rotator.subscribe(fabric.server.reload_svid)


@asynccontextmanager
async def token_path_fault(fabric: TrustFabric, fault: NetFault) -> AsyncIterator[None]:
    """The token service moved to another loopback port, a fault proxy on its own address."""
    host, port = _address(fabric)
    await fabric.server.close()
    inner: TokenServer | None = None
    proxy: FaultProxy | None = None
    try:
        rotator = fabric.rotators[TOKEN_SERVICE_NAME]
        inner_sock = bind_loopback(host, 0)
        inner_port = inner_sock.getsockname()[1]
        inner = await serve_token_service(
            fabric.service, fabric.ca, rotator.current, fabric.clock, inner_sock
        )
        proxy = FaultProxy((host, inner_port), fault)
        await proxy.start(bind_loopback(host, port))
        yield
    finally:
        if proxy is not None:
            await proxy.close()
        if inner is not None:
            await inner.close()
        await _serve_again(fabric)


def drop_cached_tokens(sandbox: Sandbox) -> int:
    """Each egress proxy starts over with its caller's current certificate and no token."""
    for (caller, _), proxy in sandbox.egress.items():
        proxy.reload_svid(sandbox.rotators[caller].current)
    return len(sandbox.egress)


@contextmanager
def skew_clock(sandbox: Sandbox, service: str, offset: timedelta) -> Iterator[None]:
    gateway = sandbox.gateways.get(service)
    if gateway is None:
        raise SandboxError(f"{service} has no trustproof gateway whose clock could be skewed")
    pipeline, validator = gateway.pipeline, gateway.pipeline.validator
    saved = (gateway.clock, pipeline.clock, validator.clock)
    try:
        gateway.clock = SkewedClock(saved[0], offset)
        pipeline.clock = SkewedClock(saved[1], offset)
        validator.clock = SkewedClock(saved[2], offset)
        yield
    finally:
        gateway.clock, pipeline.clock, validator.clock = saved


@asynccontextmanager
async def hot_reload(sandbox: Sandbox, replacement: str) -> AsyncIterator[PolicyReload]:
    """The sandbox's reload holder offered the policies with the first file replaced; the
    attempt recorded like one the file watch made (log, audit, state)."""
    watch = sandbox.policy_watch
    if watch is None:
        raise SandboxError("this sandbox enforces a given engine: its policies are not reloaded")
    holder, spec = watch.holder, sandbox.spec
    before, version = holder.current, holder.version
    reloader = PolicyReloader(
        holder,
        Directory.from_spec(spec),
        fingerprint=lambda: ("chaos",),  # a requested reload reads whatever it is
        load=lambda: variant_bundle(spec, first=replacement),
        clock=sandbox.clock,
    )
    try:
        event = await asyncio.to_thread(reloader.check, "request")
        if event is None:  # a requested reload always decides; fail closed all the same
            raise SandboxError("the policy reload made no decision")
        seen = _reload_events(sandbox)
        watch.record(event)
        recorded = bool(_reload_events(sandbox) - seen)
        yield PolicyReload(event.outcome, version, holder.version, event.reason, recorded)
    finally:
        if holder.current is not before:
            holder.swap(before)


def _reload_events(sandbox: Sandbox) -> set[str]:
    """The request ids of the policy-reload events in the sandbox's audit memory."""
    return {
        event.request_id
        for event in sandbox.audit.events()
        if event.request_id.startswith("policy-reload-")
    }


def policy_with(sandbox: Sandbox, extra: str) -> CedarPolicyEngine:
    spec = sandbox.spec
    return CedarPolicyEngine(variant_bundle(spec, extra=extra), Directory.from_spec(spec))


class _RefusingSink:
    """An audit sink that cannot write (a full disk, a log service answering 503)."""

    def record(self, event: AuditEvent) -> None:
        raise AuditUnavailable("the audit sink refuses to record (injected failure: chaos)")

    def complete(self, completion: AuditCompletion) -> None:
        raise AuditUnavailable("the audit sink refuses to record (injected failure: chaos)")


@contextmanager
def audit_sink_fault(sandbox: Sandbox) -> Iterator[None]:
    saved = {name: gateway.sink for name, gateway in sandbox.gateways.items()}
    try:
        for gateway in sandbox.gateways.values():
            gateway.sink = _RefusingSink()
        yield
    finally:
        for name, gateway in sandbox.gateways.items():
            gateway.sink = saved[name]


def elapsed_ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


FAKETIME_GLOB = "/usr/lib/*/faketime/libfaketime.so.1"


def libfaketime() -> Path:
    """libfaketime's preload library (Debian's ``faketime`` package)."""
    found = sorted(Path("/").glob(FAKETIME_GLOB.lstrip("/")))
    if not found:
        raise SandboxError(
            "libfaketime is not installed: a service process's clock cannot be skewed",
            "install it (Debian: apt-get install faketime)",
        )
    return found[0]


def faketime_offset(offset: timedelta) -> str:
    """libfaketime's relative offset, in whole seconds: ``+3600``, ``-90``."""
    seconds = round(offset.total_seconds())
    return f"{'-' if seconds < 0 else '+'}{abs(seconds)}"


@asynccontextmanager
async def skew_process_clock(
    sandbox: Sandbox, service: str, offset: timedelta
) -> AsyncIterator[None]:
    """`service`'s processes restarted under libfaketime (``LD_PRELOAD``, ``FAKETIME``), its
    clock `offset` away; restarted with the real clock afterwards."""
    if service not in sandbox.handles:
        raise SandboxError(f"no process runs for {service}: its clock cannot be skewed")
    library = libfaketime()
    sandbox.extra_env[service] = {
        "LD_PRELOAD": str(library),
        "FAKETIME": faketime_offset(offset),
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }
    try:
        await sandbox._restart(service)
        yield
    finally:
        sandbox.extra_env.pop(service, None)
        await sandbox._restart(service)


GARBAGE_JWKS = b'{"keys": [{"kty": "EC", "crv": "P-256", "kid": "chaos", "x": "garbage"}]}'
GARBAGE_PEM = b"-----BEGIN PUBLIC KEY-----\nnot a key (chaos)\n-----END PUBLIC KEY-----\n"


async def _reloaded(sandbox: Sandbox, name: str) -> None:
    """Tell `name` its files changed, and wait for a restart to finish (a SIGHUP is async)."""
    sandbox._reload(name)
    restart = sandbox._restarts.get(name)
    if restart is not None and not restart.done():
        await asyncio.wait([restart])


@asynccontextmanager
async def jwks_garbage(sandbox: Sandbox, services: tuple[str, ...]) -> AsyncIterator[None]:
    """Each service's key files (JWKS and PEM) replaced by garbage and the service told; the
    real files written back and the service told again afterwards."""
    fabric = sandbox.fabric
    if fabric is None:
        raise SandboxError("the sandbox is not running")
    directories = {name: sandbox.rotators[name].files.directory for name in services}
    try:
        for name, directory in directories.items():
            write_atomically(directory / JWKS_FILE, GARBAGE_JWKS, PUBLIC_MODE)
            for pem in (SIGNING_KEYS_FILE, SIGNING_KEY_CURRENT_FILE, SIGNING_KEY_PREVIOUS_FILE):
                write_atomically(directory / pem, GARBAGE_PEM, PUBLIC_MODE)
            await _reloaded(sandbox, name)
        yield
    finally:
        for name, directory in directories.items():
            write_trust_files(directory, fabric.keys, fabric.ca.crl_pem())
            await _reloaded(sandbox, name)


FETCH_TIMEOUT_S = 10.0  # a token request while the token service is slow


async def fetch_token(
    session: aiohttp.ClientSession, url: str, form: dict[str, str], context: ssl.SSLContext
) -> TokenFetch:
    """One client-credentials grant: the status and OAuth error code (never the token)."""
    start = time.perf_counter()
    try:
        async with asyncio.timeout(FETCH_TIMEOUT_S):
            async with session.post(url, data=form, ssl=context) as response:
                body = await response.json(content_type=None)
                status = response.status
    except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
        return TokenFetch(None, type(exc).__name__, elapsed_ms(start))
    error = str(body.get("error", "")) if isinstance(body, dict) else ""
    return TokenFetch(status, error, elapsed_ms(start))


async def revoke_all(
    session: aiohttp.ClientSession,
    url: str,
    tokens: Sequence[Secret[str]],
    context: ssl.SSLContext,
    concurrency: int,
) -> tuple[int, ...]:
    """RFC 7009 for each token, `concurrency` at a time; each status (0: no answer)."""
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(token: Secret[str]) -> int:
        async with gate:
            try:
                async with session.post(url, data={"token": token.reveal()}, ssl=context) as answer:
                    await answer.read()
                    return answer.status
            except (aiohttp.ClientError, OSError, TimeoutError):
                return 0

    return tuple(await asyncio.gather(*(one(token) for token in tokens)))


def service_path_fault(
    sandbox: Sandbox, links: tuple[tuple[str, str], ...], fault: NetFault
) -> AbstractAsyncContextManager[NetPath]:
    """Each (caller, callee) link degraded between the caller's egress proxy and the callee's
    gateway (`trustproof.sandbox.netfault`: a TCP fault proxy on the local backend; netem, or
    nftables and a relay, in the caller's namespace on the isolated one)."""
    return netfault.service_links(sandbox, links, fault)
