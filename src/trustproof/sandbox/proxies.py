"""The proxies the sandbox puts on every path: a gateway in front of each service (unless it
terminates mTLS itself) and an egress proxy for each call a service makes — built, bound to their
port and started here; the controller keeps them and stops them."""

from __future__ import annotations

from trustproof.audit import AuditSink
from trustproof.clock import Clock
from trustproof.fabric import TrustFabric
from trustproof.gateway.config import connection_limits, gateway_config
from trustproof.gateway.egress import EgressProxy
from trustproof.gateway.pipeline import Pipeline
from trustproof.gateway.proof import new_key
from trustproof.gateway.server import Gateway
from trustproof.gateway.upstream import Connector
from trustproof.identity.rotation import Rotator
from trustproof.policy import PolicyEngine
from trustproof.sandbox.ports import PortPool
from trustproof.sandbox.rundir import RunDir
from trustproof.scrub import Secret
from trustproof.spec.model import Spec
from trustproof.tokenservice.server import bind_loopback


async def start_gateway(
    spec: Spec,
    name: str,
    *,
    fabric: TrustFabric,
    sink: AuditSink,
    engine: PolicyEngine,
    rotator: Rotator,
    clock: Clock,
    run: RunDir,
    ports: PortPool,
    connector: Connector | None = None,
) -> Gateway:
    """`name`'s gateway, listening on its declared ingress port or one of `ports`; its
    gateway-proof key written for the service (0600) on the way. `connector` makes its upstream
    connections (the isolated backend: inside the service's namespace)."""
    service = spec.services[name]
    proof_key = Secret(new_key())
    run.write_gateway_proof_key(name, proof_key.reveal())
    pipeline = Pipeline(
        gateway_config(spec, name, proof_key=proof_key), fabric.validator(), engine, clock
    )
    gateway = Gateway(
        pipeline,
        upstream=f"http://{service.host}:{service.port}",
        sink=sink,
        ca=fabric.ca,
        svid=rotator.current,
        clock=clock,
        limits=connection_limits(spec),
        connector=connector,
    )
    port = service.ingress.port
    await gateway.start(bind_loopback(service.host, port) if port else ports.bind(service.host))
    rotator.subscribe(gateway.reload_svid)
    return gateway


async def start_egress(
    spec: Spec,
    caller: str,
    callee: str,
    *,
    callee_url: str,
    fabric: TrustFabric,
    rotator: Rotator,
    clock: Clock,
    ports: PortPool,
) -> EgressProxy:
    """The egress proxy `caller` reaches `callee` through (it adds the certificate and token)."""
    proxy = EgressProxy(
        caller=caller,
        callee=callee,
        callee_url=callee_url,
        token_url=f"{fabric.url}/token",
        audience=spec.spiffe_id(callee),
        bundle_pem=fabric.ca.bundle_pem(),
        svid=rotator.current,
        clock=clock,
        limits=connection_limits(spec),
    )
    await proxy.start(ports.bind("127.0.0.1"))
    rotator.subscribe(proxy.reload_svid)
    return proxy
