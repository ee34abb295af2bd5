"""Network faults on service-to-service links (``network-fault`` with ``link: service``): the
path from a caller's egress proxy to its callee's gateway degraded — latency, connection loss,
resets — and put back afterwards, whatever happened.

    async with service_links(sandbox, (("storefront", "orders"),), NetFault("reset")) as path:
        ...                                  # path.mechanism: what did it, path.detail: where

The egress proxy is pointed at a new loopback port for the fault's length (its expected callee
identity comes along: TLS still runs end to end, the callee's gateway still authenticates the
caller and judges its token); its upstream is restored on the way out.

* **local backend** — a TCP fault proxy (`sandbox.faultproxy`) on that port, forwarding to the
  callee's gateway.
* **isolated backend** — the path goes through the caller's namespace, where its egress proxy
  would live in a real deployment: the port relays into a listener inside the caller's
  namespace, which relays on to the callee's gateway. There ``tc netem`` adds the latency when
  the kernel has it (a ``prio`` qdisc on the namespace's ``lo``, a filter on the link's port);
  when it has not (``Specified qdisc kind is unknown``: no ``sch_netem``) the relay inside the
  namespace holds each chunk instead — the timeline says which, and why. Loss and resets are
  nftables rules in the caller's namespace (`firewall.fault_ruleset`): the opening SYN dropped
  (the connect gets no answer and is given up after `NetFault.hold_s`), or refused with a TCP
  reset. netem's packet loss is not used: TCP retransmits a lost packet, so it makes a
  connection slow, not failed.
"""

from __future__ import annotations

import asyncio
import functools
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from urllib.parse import urlsplit

from trustproof.errors import SandboxError
from trustproof.gateway.egress import CalleeConnector, EgressProxy
from trustproof.sandbox import firewall
from trustproof.sandbox.controller import Sandbox
from trustproof.sandbox.faultproxy import FaultProxy
from trustproof.sandbox.isolated import IsolatedNetwork
from trustproof.sandbox.netem import add_netem, remove_netem
from trustproof.sandbox.netns import NetNamespace
from trustproof.sandbox.relay import Relay, connect_host, listening
from trustproof.tokenservice.server import bind_loopback
from trustproof.view.chaos import NetFault, NetPath

CONNECT_TIMEOUT_S = 10.0  # into the caller's namespace, when the fault drops nothing


@contextmanager
def rerouted(proxy: EgressProxy, port: int) -> Iterator[None]:
    """`proxy` sends its calls to ``127.0.0.1:<port>`` (expecting its callee's identity there)
    instead of its callee's gateway; put back on the way out. Pooled connections are keyed by
    address: none to the gateway is used meanwhile, none to the port afterwards."""
    session = getattr(proxy, "_session", None)
    connector = session.connector if session is not None else None
    if not isinstance(connector, CalleeConnector):
        raise SandboxError(f"the egress proxy {proxy.caller} -> {proxy.callee} is not serving")
    saved = proxy.callee_url
    address = f"127.0.0.1:{port}"
    connector.expected[address] = proxy.tokens.audience
    proxy.callee_url = f"{urlsplit(saved).scheme}://{address}"
    try:
        yield
    finally:
        proxy.callee_url = saved
        connector.expected.pop(address, None)


def upstream_of(proxy: EgressProxy) -> tuple[str, int]:
    parts = urlsplit(proxy.callee_url)
    return parts.hostname or "127.0.0.1", parts.port or 443


@asynccontextmanager
async def service_links(
    sandbox: Sandbox, links: tuple[tuple[str, str], ...], fault: NetFault
) -> AsyncIterator[NetPath]:
    """Each (caller, callee) link degraded by `fault` (see the module); undone on the way out."""
    async with AsyncExitStack() as stack:
        paths = []
        for caller, callee in links:
            proxy = sandbox.egress.get((caller, callee))
            if proxy is None:
                raise SandboxError(f"{caller} has no egress proxy for {callee}")
            network = sandbox.network
            if network is None:
                paths.append(await _local_link(stack, proxy, fault))
            else:
                paths.append(await _isolated_link(stack, network, proxy, fault))
        if not paths:
            raise SandboxError("no service-to-service link to degrade")
        yield NetPath(paths[0].mechanism, "; ".join(p.detail for p in paths))


async def _local_link(stack: AsyncExitStack, proxy: EgressProxy, fault: NetFault) -> NetPath:
    upstream = upstream_of(proxy)
    sock = bind_loopback("127.0.0.1", 0)
    stack.callback(sock.close)  # (callbacks run last first: after the proxy's own close)
    port = sock.getsockname()[1]
    faulty = FaultProxy(upstream, fault)
    stack.push_async_callback(faulty.close)
    await faulty.start(sock)
    stack.enter_context(rerouted(proxy, port))
    return NetPath(
        "fault-proxy",
        f"{proxy.caller}'s egress proxy -> a TCP fault proxy on 127.0.0.1:{port} -> "
        f"{proxy.callee}'s gateway {upstream[0]}:{upstream[1]}",
    )


async def _isolated_link(
    stack: AsyncExitStack, network: IsolatedNetwork, proxy: EgressProxy, fault: NetFault
) -> NetPath:
    ns = network.namespaces[proxy.caller]
    host, port = upstream_of(proxy)
    inner_sock = await asyncio.to_thread(listening, ns.socket, "127.0.0.1", 0)
    stack.callback(inner_sock.close)
    inner_port = inner_sock.getsockname()[1]
    where = f"in {ns.name} on 127.0.0.1:{inner_port}"
    to_gateway = functools.partial(connect_host, host, port)
    if fault.mode == "latency":
        why = await asyncio.to_thread(add_netem, ns.name, inner_port, fault.latency_s)
        if why is None:
            stack.push_async_callback(asyncio.to_thread, remove_netem, ns.name)
            relay = await Relay.start(inner_sock, to_gateway, f"fault:{proxy.caller}")
            stack.push_async_callback(relay.close)
            path = NetPath("netem", f"tc netem delay on lo {where}")
        else:
            holding = FaultProxy((host, port), fault)
            stack.push_async_callback(holding.close)
            await holding.start(inner_sock)
            path = NetPath(
                "nft+relay",
                f"netem unavailable ({why}): the relay {where} holds each chunk "
                f"{fault.latency_s * 1000:.0f} ms",
            )
    else:
        rules = firewall.fault_ruleset(inner_port, fault.mode, round(fault.loss * 100))
        await asyncio.to_thread(firewall.apply, ns.name, rules)
        stack.push_async_callback(asyncio.to_thread, firewall.remove_fault, ns.name, inner_port)
        relay = await Relay.start(inner_sock, to_gateway, f"fault:{proxy.caller}")
        stack.push_async_callback(relay.close)
        rule = "reject with tcp reset" if fault.mode == "reset" else f"SYN drop {fault.loss:.0%}"
        path = NetPath("nft+relay", f"nftables ({rule}) on the relay {where}")
    timeout = fault.hold_s if fault.mode == "loss" else CONNECT_TIMEOUT_S
    outer_sock = bind_loopback("127.0.0.1", 0)
    stack.callback(outer_sock.close)
    outer = await Relay.start(
        outer_sock, functools.partial(_into, ns, inner_port, timeout), f"fault:{proxy.caller}"
    )
    stack.push_async_callback(outer.close)
    stack.enter_context(rerouted(proxy, outer_sock.getsockname()[1]))
    return NetPath(
        path.mechanism,
        f"{proxy.caller}'s egress proxy -> {path.detail} -> {proxy.callee}'s gateway {host}:{port}",
    )


async def _into(ns: NetNamespace, port: int, timeout: float) -> socket.socket:
    """A connection to the link's listener inside the caller's namespace; `OSError` (refused,
    or `TimeoutError` when its SYN went unanswered) when the fault stops it."""
    return await asyncio.wait_for(ns.connect("127.0.0.1", port), timeout)
