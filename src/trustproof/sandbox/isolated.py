"""The isolated backend: every service in its own network namespace, loopback only.

    network = IsolatedNetwork(spec, run)
    await network.build()                    # namespaces, hub, veths, firewalls, resolv.conf
    await network.start_relays(peers)        # service -> the host endpoints it may reach
    backend = IsolatedBackend(registry, network)   # services started with `ip netns exec`
    ...
    await network.close()                    # relays, canary, namespaces, /etc/netns dirs

Shape (pinned in the project's design): one namespace ``tp-<run8>-<service>`` per service with
``lo`` up, where the service listens on its spec's ``host:port`` — so every address it sees is
the one it sees on the local backend; one hub namespace ``tp-<run8>-hub`` every service namespace
has one veth into (`trustproof.sandbox.hub`, with the canary); in each service namespace an
nftables ruleset that lets only loopback through (`trustproof.sandbox.firewall`). The controller
stays in the host's namespace and reaches in only by sockets made inside (`NetNamespace.socket`):
the gateway's upstream connection, the health checks, the relays (`trustproof.sandbox.relay`).
On the host, a service's own port behind its gateway is held bound and not listening, so no
ephemeral bind takes it and a connection there is refused (`bypass.direct-port`).

DNS: ``/etc/netns/<ns>/resolv.conf`` says ``nameserver 127.0.0.1`` (``ip netns exec``
bind-mounts it over /etc/resolv.conf); the sandbox resolver (`trustproof.sandbox.resolver`)
listens on UDP and TCP 127.0.0.1:53 inside each namespace, answers ``localhost`` and the hosts of
the dependencies the service declares, refuses the rest and records it in `egress_ledger` with
the firewalls' drop counters (`trustproof.sandbox.egress_events`).

Fail closed: any step that fails stops the start with a `SandboxError`, and `close` deletes
whatever was made; the names are in the run's ledger before they exist (`netns.Ledger`), so the
reaper and `trustproof down` delete them after a SIGKILLed controller too.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import secrets
import socket
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from trustproof.errors import SandboxError
from trustproof.sandbox import firewall
from trustproof.sandbox.backend import (
    Handle,
    LocalProcessBackend,
    LogKey,
    PidRegistry,
    ProcessSpec,
)
from trustproof.sandbox.egress_events import EgressLedger
from trustproof.sandbox.hub import Hub
from trustproof.sandbox.netns import Ledger, NetNamespace, delete_namespace, ip_tool
from trustproof.sandbox.relay import Connect, Relay, RelayThread, connect_host, listening
from trustproof.sandbox.resolver import Resolver, start_in_namespace
from trustproof.sandbox.rundir import RunDir
from trustproof.spec.model import Spec

RESOLV_CONF = "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n"


@dataclass(frozen=True)
class Peer:
    """A host-loopback TCP endpoint a service may reach (relayed into its namespace)."""

    host: str
    port: int
    what: str


def allowed_peers(
    spec: Spec,
    token_url: str,
    egress: Mapping[tuple[str, str], str],
    datastores: Mapping[str, tuple[str, int | None]],
) -> dict[str, list[Peer]]:
    """The host endpoints each service may reach from its namespace: the token service, its
    egress proxies (`egress`: (caller, callee) -> URL) and the datastores it has a role in
    (`datastores`: name -> host, port)."""
    token = urlsplit(token_url)
    peers: dict[str, list[Peer]] = {}
    for name, service in spec.services.items():
        allowed = [Peer(token.hostname or "127.0.0.1", token.port or 443, "token-service")]
        for callee in service.calls:
            if (name, callee) not in egress:
                continue  # no proxy, no relay: nothing to reach it through (fails closed)
            url = urlsplit(egress[(name, callee)])
            allowed.append(Peer(url.hostname or "127.0.0.1", url.port or 80, f"egress:{callee}"))
        for store, (host, port) in datastores.items():
            if name in spec.datastores[store].roles and port is not None:
                allowed.append(Peer(host, int(port), f"datastore:{store}"))
        peers[name] = allowed
    return peers


def run_id() -> str:
    """8 hex characters naming this run's namespaces."""
    return secrets.token_hex(4)


class IsolatedNetwork:
    """Every namespace, link, rule and relay of one sandbox."""

    def __init__(self, spec: Spec, run: RunDir, run8: str | None = None) -> None:
        self.spec = spec
        self.run = run
        self.run8 = run8 or run_id()
        self.ledger = Ledger(run.path)
        self.namespaces: dict[str, NetNamespace] = {}
        self.addresses: dict[str, str] = {}  # service -> its address on the hub
        self.hub: Hub | None = None
        self.relays: list[Relay] = []
        self.relay_thread: RelayThread | None = None
        self.resolvers: dict[str, Resolver] = {}
        # What the services themselves tried: refused DNS queries (from the resolvers) and the
        # firewalls' drop counters (`sandbox.egress_events`)
        self.egress_ledger = EgressLedger(read_drops=self.drops)
        self._reserved: list[socket.socket] = []
        self._made: list[str] = []

    def ns_name(self, service: str) -> str:
        return f"tp-{self.run8}-{service}"

    # -- build ----------------------------------------------------------------------------------

    async def build(self) -> None:
        """Create everything, or raise `SandboxError` (the caller's `close` removes the rest)."""
        if "hub" in self.spec.services:
            raise SandboxError(
                "a service named 'hub' would share the name of the sandbox's hub namespace "
                f"({self.ns_name('hub')})",
                "rename the service, or run with `--backend local`",
            )
        await asyncio.to_thread(self._build_links)
        for ns in self.namespaces.values():
            ns.write_etc("resolv.conf", RESOLV_CONF)
        await asyncio.gather(
            *(
                asyncio.to_thread(firewall.apply, ns.name, firewall.ruleset())
                for ns in self.namespaces.values()
            )
        )
        assert self.hub is not None  # noqa: S101 (built above)
        await self.hub.start_canary()
        for name, ns in self.namespaces.items():
            await self._start_resolver(name, ns)
        self._reserve_host_ports()

    def _create(self, name: str) -> NetNamespace:
        self.ledger.add(name)  # recorded before it exists: `down` finds it whatever happens next
        self._made.append(name)
        return NetNamespace.create(name, lo=False)  # lo comes up in the batches below

    def _build_links(self) -> None:
        self.hub = Hub(self._create(self.ns_name("hub")))  # first: it sets up /run/netns
        names = {service: self.ns_name(service) for service in self.spec.services}
        for name in names.values():
            self.ledger.add(name)
            self._made.append(name)
        with ThreadPoolExecutor(max_workers=8) as pool:  # one `ip netns add` each, at once
            made = list(pool.map(lambda name: NetNamespace.create(name, lo=False), names.values()))
        self.namespaces = dict(zip(names, made, strict=True))
        self.hub.build()
        by_ns = self.hub.attach(list(self.namespaces.values()))
        self.addresses = {s: by_ns[ns.name] for s, ns in self.namespaces.items()}

    async def _start_resolver(self, service: str, ns: NetNamespace) -> None:
        """The sandbox resolver on UDP and TCP 127.0.0.1:53 inside `ns` (`sandbox.resolver`):
        it answers `resolver_names` and records every other query in the egress ledger."""
        self.resolvers[service] = await start_in_namespace(
            ns.socket, self.resolver_names(service), self.egress_ledger.recorder(service)
        )

    def resolver_names(self, service: str) -> Mapping[str, str]:
        """The names `service`'s resolver answers, each with 127.0.0.1: ``localhost`` and the
        host of each dependency it declares in `calls` (reached through its egress proxy)."""
        names = {"localhost": "127.0.0.1"}
        for callee in self.spec.services[service].calls:
            dependency = self.spec.dependencies.get(callee)
            if dependency is not None:
                names[dependency.host] = "127.0.0.1"
        return names

    def _reserve_host_ports(self) -> None:
        """Hold each gateway-fronted service's port on the host bound (not listening): the
        kernel hands it to no ephemeral bind, and a connection there is refused."""
        for service in self.spec.services.values():
            if service.ingress.gateway == "none":
                continue  # its relay listens there
            self._reserved.append(_hold(service.host, int(service.port)))

    # -- relays ---------------------------------------------------------------------------------

    async def start_relays(self, peers: Mapping[str, Sequence[Peer]]) -> None:
        """Inside each service namespace, a relay per allowed host endpoint (same host:port);
        on the host, a relay into each ``gateway: none`` service's port."""
        thread = self.relay_thread = self.relay_thread or RelayThread()
        for service, endpoints in peers.items():
            ns = self.namespaces[service]
            for endpoint in dict.fromkeys(endpoints):
                sock = listening(ns.socket, endpoint.host, endpoint.port)
                outward = _to_host(endpoint.host, endpoint.port)
                relay = await thread.run(Relay.start(sock, outward, f"{service}->{endpoint.what}"))
                self.relays.append(relay)
        for name, own in self.spec.services.items():
            if own.ingress.gateway != "none":
                continue
            sock = listening(_host_socket, own.host, int(own.port))
            inward = _into(self.namespaces[name], own.host, int(own.port))
            self.relays.append(await thread.run(Relay.start(sock, inward, f"ingress->{name}")))

    # -- while running --------------------------------------------------------------------------

    def drops(self) -> dict[str, tuple[firewall.DropCount, ...]]:
        """What each service tried that its firewall refused."""
        return {s: firewall.read_drops(ns.name) for s, ns in self.namespaces.items()}

    # -- teardown -------------------------------------------------------------------------------

    async def close(self) -> None:
        """Stop relays, canary and resolvers; delete every namespace made (idempotent)."""
        thread, self.relay_thread = self.relay_thread, None
        if thread is not None:
            for relay in self.relays:
                with contextlib.suppress(Exception):
                    await thread.run(relay.close())
            thread.close()
        self.relays.clear()
        for resolver in self.resolvers.values():
            close = getattr(resolver, "close", None)
            with contextlib.suppress(Exception):
                result = close() if close is not None else None
                if asyncio.iscoroutine(result):
                    await result
        self.resolvers.clear()
        if self.hub is not None:
            await self.hub.close()
        for sock in self._reserved:
            sock.close()
        self._reserved.clear()
        await asyncio.to_thread(self._delete_all)

    def _delete_all(self) -> None:
        if self.hub is not None:
            self.hub.ns.close()
        for ns in self.namespaces.values():
            ns.close()
        for name in reversed(self._made):
            delete_namespace(name)
        if not any(NetNamespace(name).exists() for name in self._made):
            self.ledger.clear()
        self._made.clear()


def _hold(host: str, port: int) -> socket.socket:
    """A socket bound to `host:port`, not listening. Without SO_REUSEADDR first: then no other
    process can bind the port either (a server sets SO_REUSEADDR, and Linux lets two sockets
    share a port only when both did); with it when the port only has connections of an earlier
    run in TIME_WAIT."""
    with contextlib.suppress(OSError):
        return _bound(host, port, reuse=False)
    try:
        return _bound(host, port, reuse=True)
    except OSError as exc:
        raise SandboxError(
            f"cannot hold {host}:{port} on the host: {exc.strerror}",
            "stop whatever listens there, or choose another port in the spec",
        ) from None


def _bound(host: str, port: int, *, reuse: bool) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, int(reuse))
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _host_socket(family: int, type: int, proto: int = 0) -> socket.socket:
    return socket.socket(family, type, proto)


def _to_host(host: str, port: int) -> Connect:
    return functools.partial(connect_host, host, port)


def _into(ns: NetNamespace, host: str, port: int) -> Connect:
    return functools.partial(ns.connect, host, port)


class IsolatedBackend:
    """Services as child processes, each started inside its namespace by ``ip netns exec`` (which
    also bind-mounts ``/etc/netns/<ns>/resolv.conf``); everything else as `LocalProcessBackend`
    (process group, pid registry, parent-death SIGKILL, scrubbed logs)."""

    def __init__(self, registry: PidRegistry, network: IsolatedNetwork, log_key: LogKey) -> None:
        self.local = LocalProcessBackend(registry, log_key)
        self.network = network

    async def start(self, spec: ProcessSpec) -> Handle:
        ns = self.network.namespaces.get(spec.name)
        ip = ip_tool()
        if ns is None or ip is None:
            raise SandboxError(f"no network namespace for service {spec.name!r}")
        return await self.local.start(
            replace(spec, argv=(ip, "netns", "exec", ns.name, *spec.argv))
        )

    async def stop(self, handle: Handle) -> None:
        await self.local.stop(handle)
