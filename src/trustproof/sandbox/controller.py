"""The sandbox: everything the spec describes, started in dependency order and stopped in reverse.

    async with Sandbox.from_file("trustproof.yaml") as sb:     # or: with ... (a background loop)
        sb.endpoints["orders"].url                              # the gateway in front of orders
        sb.token("alice", "storefront")                         # a persona token
        sb.cert("orders")                                       # a fresh X.509-SVID

Start is all or nothing: when any step fails, whatever was started is stopped again and a
`SandboxError` says what failed, with the service's last log lines and a hint.

If this process dies without stopping the sandbox (SIGKILL, a crash), nothing outlives it for
long: the services and PostgreSQL get SIGKILL from the kernel (`trustproof.parentdeath`), and a
reaper process started first (`sandbox.reaper`) kills whatever is left of their process groups
and removes the key material.

Order: run directory (0700) → trust fabric (CA, token service) → datastores → each workload's
SVID files and the CA's CRLs (rewritten at each rotation, at half-life), its certificate and key in
one PEM, and the token service's keys as JWKS and PEM files (`trustfiles`: rewritten when keys or
CRL change, `gateway: none` services then reloaded) → gateways, each with a fresh gateway-proof
key that its service gets as a 0600 file (so it can refuse requests that bypassed the gateway) →
egress proxies → external dependencies (`dependencies`: their mocks, then each calling service's
proxy for each) → the services, callees first, each waited for until healthy → the policy watcher
(`policywatch`: policy files changed under the run are reloaded).

Backends (`backend_kind`): on the isolated one (`sandbox.isolated`; the spec's `backend`,
``--backend``, TRUSTPROOF_BACKEND) the network namespaces, hub and firewalls are made right after
the reaper, before anything listens; the gateways and health checks reach each service through
sockets made inside its namespace (`namespaces`: service -> `NetNamespace`); relays into each
namespace lead to its egress proxies, the token service and its datastores; the namespaces are
deleted last at stop.

Every identity the sandbox issues rotates at half-life, with the other half as overlap: each
workload's SVID (its files, the gateway in front of it and its egress proxies, which then fetch
tokens bound to the new certificate), the token service's server certificate (loaded into its
listening context, no restart), the admin identity (rewritten in ``<run>/admin``) and each
PostgreSQL server certificate (installed and reloaded). One ticker checks them every second (more
often for certificate lifetimes under 8 s); the shortest lifetime it accepts is
`renewal.MIN_CERTIFICATE_TTL_SECONDS`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import asdict, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, Self

from trustproof.audit import AuditSink, AuditUnavailable, FanOutSink, MemorySink
from trustproof.audit.keys import load_kek
from trustproof.audit.servicelog import ServiceLog, read_service_log
from trustproof.audit.store import EncryptedLogSink
from trustproof.clock import Clock, SystemClock
from trustproof.errors import SandboxError, TrustproofError, UsageError
from trustproof.fabric import TrustFabric
from trustproof.gateway.egress import EgressProxy
from trustproof.gateway.server import Gateway
from trustproof.gateway.upstream import Connector
from trustproof.identity import Rotator, Svid
from trustproof.policy import PolicyEngine
from trustproof.policy.reload import PolicyReload
from trustproof.sandbox.backend import (
    Backend,
    Handle,
    LocalProcessBackend,
    PidRegistry,
    kill_group,
)
from trustproof.sandbox.background import BackgroundLoop
from trustproof.sandbox.choice import ENV as BACKEND_ENV
from trustproof.sandbox.choice import BackendKind, resolve_choice
from trustproof.sandbox.containers import ContainerBackend
from trustproof.sandbox.datastores import Datastores
from trustproof.sandbox.dependencies import Dependencies
from trustproof.sandbox.egress_events import EgressLedger
from trustproof.sandbox.endpoints import Endpoint
from trustproof.sandbox.firewall import DropCount
from trustproof.sandbox.isolated import IsolatedBackend, IsolatedNetwork, allowed_peers
from trustproof.sandbox.netns import NetNamespace
from trustproof.sandbox.policywatch import PolicyWatch
from trustproof.sandbox.ports import PortPool
from trustproof.sandbox.procinfo import start_time
from trustproof.sandbox.proxies import start_egress, start_gateway
from trustproof.sandbox.readiness import ensure_free, wait_ready
from trustproof.sandbox.reaper import Reaper, wait_for_previous
from trustproof.sandbox.renewal import check_certificate_ttl, renew_forever, tick_seconds
from trustproof.sandbox.rundir import RunDir
from trustproof.sandbox.services import (
    render_templates,
    service_env,
    service_process,
    start_order,
    write_crl,
)
from trustproof.sandbox.trustfiles import TrustFileWatch, watch_trust_files, write_cert_key
from trustproof.scrub import install_scrubbing, scrubbed_traceback
from trustproof.spec import Spec, load_spec
from trustproof.tokenservice.core import ADMIN_NAME

log = logging.getLogger("trustproof.sandbox")


class Sandbox:
    def __init__(
        self,
        spec: Spec,
        *,
        run_dir: Path | None = None,
        backend: Backend | None = None,
        clock: Clock | None = None,
        engine: PolicyEngine | None = None,
        backend_choice: str | None = None,
    ) -> None:
        install_scrubbing()  # every log record of the hosting process, whichever library made it
        self.spec = spec
        self.run = RunDir.create(run_dir)
        self.clock = clock or SystemClock()
        self.registry = PidRegistry(self.run.pids)
        self.backend = backend or LocalProcessBackend(self.registry, self._service_log_key)
        self.containers = ContainerBackend(  # `image:` services
            self.run, self.registry, self._service_log_key
        )
        self.engine = engine
        self.policy_watch: PolicyWatch | None = None  # with the spec's policies (no `engine`)
        self.audit = MemorySink()
        self.fabric: TrustFabric | None = None
        self.endpoints: dict[str, Endpoint] = {}
        self.rotators: dict[str, Rotator] = {}
        self.gateways: dict[str, Gateway] = {}
        self.proof_key_files: dict[str, Path] = {}  # service -> its gateway-proof.key
        self.egress: dict[tuple[str, str], EgressProxy] = {}
        self.handles: dict[str, Handle] = {}
        self.ports = PortPool.of(spec)
        self.datastores = Datastores(spec, self.run, self.registry, self.ports)
        self.dependencies = Dependencies(spec, self.run, self.ports)  # mocks, egress proxies
        self.ready_seconds: dict[str, float] = {}
        self._cleanups: list[Callable[[], Any]] = []
        self._file_sink: EncryptedLogSink | None = None  # the run's durable audit log
        self._ticker: asyncio.Task[None] | None = None
        self._reaper: Reaper | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._background_loop: BackgroundLoop | None = None  # the `with` API's loop
        self._envs: dict[str, dict[str, str]] = {}  # service -> its environment (re-rendering)
        self._restarts: dict[str, asyncio.Task[None]] = {}  # the latest restart of each service
        self.trust_files: TrustFileWatch | None = None
        # service -> variables added to its environment when it (re)starts (the chaos
        # experiments' libfaketime clock skew, `sandbox.view_chaos`)
        self.extra_env: dict[str, dict[str, str]] = {}
        # Which backend runs the services: a given `backend` is used as it is (local);
        # else `backend_choice` / TRUSTPROOF_BACKEND / the spec's `backend` (sandbox.isolated).
        self.backend_kind: BackendKind = "local"
        self.namespaces: dict[str, NetNamespace] = {}  # service -> its network namespace
        self.network: IsolatedNetwork | None = None
        # isolated backend: what the services themselves tried (`trustproof.sandbox.egress_events`)
        self.egress_ledger: EgressLedger | None = None
        if backend is None:
            requested = backend_choice or os.environ.get(BACKEND_ENV) or None
            if resolve_choice(requested, spec.backend, log.warning) == "isolated":
                self.network = IsolatedNetwork(spec, self.run)
                self.backend = IsolatedBackend(self.registry, self.network, self._service_log_key)
                self.backend_kind = "isolated"
                self.egress_ledger = self.network.egress_ledger

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: Any) -> Self:
        return cls(load_spec(path), **kwargs)

    # -- start ----------------------------------------------------------------------------------

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException as exc:
            await self.stop()
            if isinstance(exc, TrustproofError | asyncio.CancelledError | KeyboardInterrupt):
                raise
            raise SandboxError(
                f"the sandbox could not start: {type(exc).__name__}: {exc}",
                "see the logs in " + str(self.run.logs),
            ) from exc

    async def _start(self) -> None:
        spec = self.spec
        check_certificate_ttl(spec.ttl.certificate)
        self._check_ports()
        self.dependencies.check_credentials()  # a missing variable fails before anything runs
        await self._spawn_reaper()
        if self.network is not None:  # namespaces, hub, firewalls: before anything listens
            self._cleanups.append(self.network.close)
            await self.network.build()
            self.namespaces = self.network.namespaces
        self.fabric = fabric = await TrustFabric.start(
            spec, clock=self.clock, sock=self.ports.bind("127.0.0.1")
        )
        self._cleanups.append(fabric.close)
        # The token service is served by this process: its pid is the controller's.
        self.endpoints["token-service"] = Endpoint(
            "token-service", "token-service", fabric.url, pid=os.getpid()
        )
        self.run.write_admin(fabric.admin, fabric.ca.bundle_pem())
        fabric.rotators[ADMIN_NAME].subscribe(
            lambda svid: self.run.write_admin(svid, fabric.ca.bundle_pem())
        )
        self._file_sink = self._open_audit_log()
        self._cleanups.append(self._file_sink.close)
        fabric.service.audit = self._file_sink.event
        # The durable sink first: if it refuses, the request is refused and memory never says
        # it was allowed.
        sink = FanOutSink(self._file_sink, self.audit)
        engine = self.engine
        if engine is None:  # the spec's policies, reloaded when their files change
            self.policy_watch = PolicyWatch(spec, self.clock, sink, self._on_policy_reload)
            self._cleanups.append(self.policy_watch.close)
            engine = self.policy_watch.holder

        await self.datastores.start(fabric)
        self._cleanups.append(self.datastores.stop)
        self._start_rotators(fabric)
        # JWKS, signing-key and CRL files, rewritten on change; `gateway: none` services reloaded
        self.trust_files = watch_trust_files(
            spec, fabric.keys, fabric.ca, self.rotators, self._reload
        )
        await self._start_gateways(fabric, sink, engine)
        await self._start_egress(fabric)
        self._cleanups.append(self.dependencies.stop)
        # A team's mock command is part of the sandbox, not a service under test: it runs as
        # a plain local process (on the isolated backend too), reached through the proxies.
        mocks_backend: Backend = self.backend
        if isinstance(self.backend, IsolatedBackend):
            mocks_backend = self.backend.local
        await self.dependencies.start(mocks_backend)
        if self.network is not None:
            stores = {n: (s.host, s.port) for n, s in self.datastores.servers.items()}
            egress = {pair: proxy.url for pair, proxy in self.egress.items()}
            for name in spec.services:  # its dependencies' proxies are peers like its egress
                for dependency, url in self.dependencies.urls_for(name).items():
                    egress[(name, dependency)] = url
            await self.network.start_relays(allowed_peers(self.spec, fabric.url, egress, stores))
        for name, service in spec.services.items():
            if service.reload != "none":
                self.rotators[name].subscribe(functools.partial(self._on_rotation, name))
        self._ticker = asyncio.create_task(
            renew_forever(
                tick_seconds(spec.ttl.certificate.seconds),
                lambda: [*self.rotators.items(), *fabric.rotators.items()],
                functools.partial(self.datastores.tick, fabric.certificate_ttl),
                self._check_trust_files,
            )
        )
        await self._start_services()
        self.run.write_state(self.state())
        if self.policy_watch is not None:
            self.policy_watch.start()

    def _open_audit_log(self) -> EncryptedLogSink:
        """The run's encrypted audit log (`trustproof.audit.store`), under the KEK the
        environment, the spec or the per-user key file gives (`trustproof.audit.keys`)."""
        settings = self.spec.audit
        kek = load_kek(
            spec_kek_file=self.spec.resolve(settings.kek_file) if settings.kek_file else None,
            run_dir=self.run.path,
            create=True,
        )
        self._log_kek = kek.key  # service logs are encrypted under it too (`_service_log_key`)
        return EncryptedLogSink(
            self.run.audit_log,
            kek.key,
            checkpoint_every=settings.checkpoint_every,
            batch_records=settings.batch_records,
        )

    def audit_event(self, kind: str, **fields: Any) -> None:
        """Add one record of `kind` (`trustproof.audit.EVENT_KINDS`: ``probe``, ``scenario``,
        ``chaos``, ``egress.drop``, ``dns.refused``, ``alert``, the token service's, ...) to the
        run's encrypted audit log; fields are JSON values (scrubbed, never a credential). Raises
        `AuditUnavailable` when the log cannot take it (or the sandbox is not running)."""
        if self._file_sink is None:
            raise AuditUnavailable(
                "the sandbox has no audit log open", "start the sandbox before recording events"
            )
        self._file_sink.event(kind, fields)

    @property
    def audit_log(self) -> EncryptedLogSink | None:
        """The run's durable audit log while the sandbox runs (None before its start)."""
        return self._file_sink

    def _start_rotators(self, fabric: TrustFabric) -> None:
        ttl = timedelta(seconds=self.spec.ttl.certificate.seconds)
        for name, service in self.spec.services.items():
            rotator = Rotator(
                fabric.ca, self.clock, name, ttl, self.run.identity(name), ips=[service.host]
            )
            self.rotators[name] = rotator
            write_crl(fabric.ca, rotator.files.directory)  # before any reload subscriber below
            rotator.subscribe(functools.partial(self._write_crl, name))
            write_cert_key(rotator.files.directory, rotator.current)
            rotator.subscribe(functools.partial(write_cert_key, rotator.files.directory))

    def _write_crl(self, name: str, _: Svid | None = None) -> None:
        """A rotation's fresh ``crl.pem`` — unless a fault holds the service's files (a CRL
        removed on purpose must stay removed: `TrustFileWatch.held`)."""
        fabric, watch = self.fabric, self.trust_files
        if fabric is not None and (watch is None or not watch.holds(name)):
            write_crl(fabric.ca, self.rotators[name].files.directory)

    def _check_trust_files(self) -> None:
        if self.trust_files is not None:
            self.trust_files.check()

    async def _start_gateways(
        self, fabric: TrustFabric, sink: AuditSink, engine: PolicyEngine
    ) -> None:
        for name, service in self.spec.services.items():
            if service.ingress.gateway == "none":
                continue
            self.gateways[name] = await start_gateway(
                self.spec,
                name,
                fabric=fabric,
                sink=sink,
                engine=engine,
                rotator=self.rotators[name],
                clock=self.clock,
                run=self.run,
                ports=self.ports,
                connector=self.connector(name),
            )
            self._cleanups.append(self.gateways[name].close)
            self.proof_key_files[name] = self.run.gateway_proof_key(name)

    async def _start_egress(self, fabric: TrustFabric) -> None:
        for name, service in self.spec.services.items():
            for callee in service.calls:
                if callee not in self.spec.services:
                    continue  # a dependency: its proxy is started by `self.dependencies`
                proxy = await start_egress(
                    self.spec,
                    name,
                    callee,
                    callee_url=self._ingress_url(callee),
                    fabric=fabric,
                    rotator=self.rotators[name],
                    clock=self.clock,
                    ports=self.ports,
                )
                self._cleanups.append(proxy.close)
                self.egress[(name, callee)] = proxy

    async def _start_services(self) -> None:
        spec = self.spec
        for level in start_order(spec):
            await asyncio.gather(*(self._start_service(name) for name in level))
        for name, service in spec.services.items():
            self.endpoints[name] = Endpoint(
                name,
                "service",
                self._ingress_url(name),
                direct_url=f"http://{service.host}:{service.port}",
                pid=self.handles[name].pid,
                egress={
                    c: self.egress[(name, c)].url for c in service.calls if (name, c) in self.egress
                },
                dependencies=self.dependencies.urls_for(name),
            )
        for name, dsn in self.datastores.endpoints().items():
            self.endpoints[name] = Endpoint(name, "datastore", dsn.url, pid=dsn.pid, dsn=dsn.dsn)
        for name, dependency in self.dependencies.state().items():
            mock = self.dependencies.mocks.get(name)
            self.endpoints[name] = Endpoint(
                name,
                "dependency",
                dependency["served_at"],
                pid=mock.handle.pid if mock is not None and mock.handle is not None else None,
                dependencies=dependency["proxies"],
            )

    async def _spawn_reaper(self) -> None:
        """Before anything runs or any key is written: if this process dies, the reaper cleans up.

        (An earlier run's reaper still at work in this run directory would clean us up too.)
        """
        try:
            await asyncio.to_thread(wait_for_previous, self.run)
        except OSError as exc:
            raise SandboxError(str(exc)) from None
        self._reaper = Reaper.spawn(self.run, self.registry)

    def _check_ports(self) -> None:
        for name, service in self.spec.services.items():
            ensure_free(service.host, service.port, f"service {name!r}")
            if service.ingress.port and service.ingress.gateway != "none":
                ensure_free(service.host, service.ingress.port, f"the gateway of {name!r}")
        for name, store in self.spec.datastores.items():
            if store.port:
                ensure_free(store.host, store.port, f"datastore {name!r}")

    def _ingress_url(self, name: str) -> str:
        service = self.spec.services[name]
        if name in self.gateways:
            return self.gateways[name].url
        return f"https://{service.host}:{service.port}"

    async def _start_service(self, name: str) -> None:
        assert self.fabric is not None  # noqa: S101 (started above)
        service = self.spec.services[name]
        env = service_env(
            self.spec,
            name,
            self.run,
            self.rotators[name],
            token_url=f"{self.fabric.url}/token",
            issuer=self.fabric.issuer.issuer,
            egress={
                c: self.egress[(name, c)].url for c in service.calls if (name, c) in self.egress
            },
            datastores=self.datastores,
            proof_key_file=self.proof_key_files.get(name),
            dependencies=self.dependencies.urls_for(name),
        )
        env = {**env, **self.extra_env.get(name, {})}
        self._envs[name] = env
        process = service_process(self.spec, name, self.run, env)
        namespace = getattr(self, "namespaces", {}).get(name)  # the isolated backend's
        if namespace is not None:
            process = replace(process, netns_path=Path(namespace.path))
        backend = self.containers if service.image is not None else self.backend
        handle = await backend.start(process)
        self.handles[name] = handle
        connector = self.connector(name)  # inside its namespace on the isolated backend
        self.ready_seconds[name] = await wait_ready(
            name, service.host, service.port, service.health, handle, connector=connector
        )

    def connector(self, name: str) -> Connector | None:
        """How to connect to service `name`'s own port: inside its namespace when isolated."""
        ns = self.namespaces.get(name)
        return ns.connect if ns is not None else None

    def egress_drops(self) -> dict[str, tuple[DropCount, ...]]:
        """What each service tried that its namespace's firewall refused (isolated backend;
        empty on the local backend)."""
        return self.network.drops() if self.network is not None else {}

    def _on_rotation(self, name: str, _: Svid) -> None:
        """Tell a service its certificate files changed, the way its spec says (`reload`)."""
        self._reload(name)

    def _reload(self, name: str) -> None:
        """Tell a service its files changed (`reload`): its templates are rendered again, then
        SIGHUP to its process group, or a restart (one after the other, never two at once)."""
        handle = self.handles.get(name)
        if handle is None or self.spec.services[name].reload == "none":
            return
        if self.spec.services[name].reload == "sighup":
            if name in self._envs:
                render_templates(self.spec, name, self.run, self._envs[name])
            kill_group(handle.pid, signal.SIGHUP)
        else:  # restart (renders its templates anew)
            previous = self._restarts.get(name)
            task = asyncio.get_running_loop().create_task(self._restart(name, previous))
            self._restarts[name] = task
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _restart(self, name: str, previous: asyncio.Task[None] | None = None) -> None:
        if previous is not None and not previous.done():
            await asyncio.wait([previous])
        handle = self.handles.pop(name, None)
        if handle is not None:
            await self._backend_of(handle).stop(handle)
        await self._start_service(name)
        self.endpoints[name] = replace(self.endpoints[name], pid=self.handles[name].pid)

    def _backend_of(self, handle: Handle) -> Backend:
        return self.containers if handle.container_id is not None else self.backend

    # -- stop -----------------------------------------------------------------------------------

    async def stop(self) -> None:
        """Stop everything started, newest first; idempotent; removes key material."""
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        for task in list(self._background):  # restarts in flight must not outlive the stop
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        for name in reversed(list(self.handles)):
            handle = self.handles.pop(name)
            await _attempt(functools.partial(self._backend_of(handle).stop, handle))
        await _attempt(functools.partial(asyncio.to_thread, self.containers.close))
        while self._cleanups:  # one failing step must not leave the others running
            await _attempt(self._cleanups.pop())
        self.run.remove_secrets()
        if self._reaper is not None:  # everything is clean: the reaper has nothing to do
            await _attempt(self._reaper.dismiss)
            self._reaper = None

    # -- what it offers -------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """What `trustproof status --json` shows: stable keys for scripts."""
        fabric = self.fabric
        return {
            "version": 1,
            "controller_pid": os.getpid(),
            "controller_start_time": start_time(os.getpid()),
            "run_dir": str(self.run.path),
            "spec": str(self.spec.path),
            "trust_domain": self.spec.trust_domain,
            "discovery_url": fabric.discovery_url if fabric else None,
            "ca_bundle": str(self.run.bundle),
            "endpoints": {name: asdict(ep) for name, ep in self.endpoints.items()},
            "ready_seconds": self.ready_seconds,
            "policy_reloads": self.policy_watch.reloader.summary() if self.policy_watch else None,
            "backend": self.backend_kind,
            "namespaces": {name: ns.name for name, ns in self.namespaces.items()},
            "audit": _audit_state(self._file_sink),
        }

    def _on_policy_reload(self, _: PolicyReload) -> None:
        if self.endpoints:
            self.run.write_state(self.state())

    async def reload_policies(self) -> PolicyReload:
        """Re-read the spec's Cedar policies now: a valid set is swapped into every gateway at
        once; an invalid one is refused and the old one kept. Either way the attempt is returned
        and recorded (audit log, `state()["policy_reloads"]`). The watcher does the same by itself
        within about a second of a file change."""
        if self.policy_watch is None:
            raise SandboxError(
                "no policies to reload: the sandbox is not running, or runs an engine it was given",
                "start the sandbox without `engine=` to enforce (and reload) the spec's policies",
            )
        event = await self.policy_watch.reload("request")
        assert event is not None  # noqa: S101 (a requested reload always has an outcome)
        return event

    def token(
        self,
        name: str,
        audience: str,
        ttl: timedelta | None = None,
        *,
        cnf_x5t_s256: str | None = None,
    ) -> str:
        """A fresh token for persona or workload `name`, for the service `audience`.

        Gateways refuse workload tokens that are not bound to the caller's certificate: pass the
        RFC 8705 thumbprint of the certificate it will be presented with (`Svid.x5t_s256`).
        """
        if self.fabric is None:
            raise SandboxError("the sandbox is not running")
        if name not in self.spec.personas and name not in self.spec.services:
            raise UsageError(
                f"unknown caller {name!r}", f"expected one of: {', '.join(self.spec.callers)}"
            )
        if audience not in self.spec.services:
            raise UsageError(
                f"unknown audience {audience!r}: a token is for a service",
                f"expected one of: {', '.join(self.spec.services)}",
            )
        return self.fabric.token_for(
            name, audience, cnf_x5t_s256=cnf_x5t_s256, ttl=ttl
        ).token.reveal()

    def cert(self, name: str) -> Svid:
        if self.fabric is None:
            raise SandboxError("the sandbox is not running")
        if name not in self.spec.personas and name not in self.spec.services:
            raise UsageError(
                f"unknown identity {name!r}", f"expected one of: {', '.join(self.spec.callers)}"
            )
        return self.fabric.issue(name)

    # -- context managers -----------------------------------------------------------------------

    def __enter__(self) -> Self:
        """Run the sandbox on an event loop in a background thread (for synchronous tests)."""
        background = self._background_loop = BackgroundLoop("trustproof-sandbox")
        try:
            background.run(self.start())
        except BaseException:
            self._background_loop = None
            background.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        background, self._background_loop = self._background_loop, None
        if background is not None:
            try:
                background.run(self.stop())
            finally:
                background.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- service logs, encrypted at rest (`trustproof.audit.servicelog`) ------------------------

    def _service_log_key(self) -> bytes:
        """The KEK the services' logs are encrypted under: the audit log's, loaded at start."""
        key: bytes | None = getattr(self, "_log_kek", None)
        if key is None:
            raise SandboxError(
                "no audit key-encryption key is loaded: a service's log would be in the clear",
                "start the sandbox (it loads the KEK) before starting services",
            )
        return key

    def flush_service_logs(self) -> None:
        """Write the output that waits in memory, for a reader of the log files now."""
        mocks = [m.handle for m in self.dependencies.mocks.values() if m.handle is not None]
        for handle in [*self.handles.values(), *mocks]:
            handle.flush_log()

    def service_log(self, name: str | Path) -> ServiceLog:
        """Service (or dependency mock) `name`'s output so far (or the log file `name` of this
        run), verified and decrypted in memory (`trustproof.audit.servicelog`)."""
        self.flush_service_logs()
        path = name if isinstance(name, Path) else self.run.service_log(name)
        return read_service_log(path, self._service_log_key())


def _audit_state(log: EncryptedLogSink | None) -> dict[str, Any] | None:
    """The audit log's public facts: its file, run id, checkpoint key (public) and health."""
    if log is None:
        return None
    return {
        "file": str(log.path),
        "run": log.run,
        "signing_key": log.signing_key.hex(),
        "failure": log.failure,
    }


async def _attempt(step: Callable[[], Any]) -> None:
    """Run one teardown step (awaiting it when needed); log a failure instead of raising."""
    try:
        result = step()
        if asyncio.iscoroutine(result):
            await result
    except Exception as exc:
        log.error("teardown step failed; continuing:\n%s", scrubbed_traceback(exc))
