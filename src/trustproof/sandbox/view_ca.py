"""The live view's certificate-authority faults (`SandboxView.add_root`, `retire_root`,
`temporary_intermediate`, `hold_cert`, ...): where the chaos experiments of
`trustproof.chaos.faults_ca` touch the sandbox's CA and every copy of its trust bundle.

Publishing the bundle reaches every holder the sandbox has: each gateway's handshake trust store
(roots are only ever added to an `SSLContext`; a removed root is refused by the SVID check, which
reads the CA's current bundle, and by the CA's `is_revoked` for the leaves it issued), the token
service's listening context, each egress proxy (its client context, rebuilt with the new bundle
and a new token), every workload's ``bundle.pem`` and ``crl.pem`` (the rotators rewrite them and
tell their subscribers: the service is reloaded as after a rotation when its spec says
``reload:``), the admin files, and each datastore (bundle and CRLs, reloaded).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime, timedelta

from cryptography import x509

from trustproof.errors import SandboxError
from trustproof.fabric import TrustFabric
from trustproof.identity import Svid
from trustproof.sandbox import reloads
from trustproof.sandbox.controller import Sandbox
from trustproof.sandbox.services import write_crl
from trustproof.sandbox.trustfiles import PUBLIC_MODE, write_atomically
from trustproof.tls import trust
from trustproof.view.chaos import BundleChange, TemporaryCa

WAIT_SLACK_S = 0.01  # past the instant waited for, so that "after" holds by any clock reading


def _fabric(sandbox: Sandbox) -> TrustFabric:
    fabric = sandbox.fabric
    if fabric is None:
        raise SandboxError("the sandbox is not running", "start it first (`trustproof up`)")
    return fabric


def told(sandbox: Sandbox) -> tuple[str, ...]:
    """The services a rewrite of their files reaches (a process runs, its spec has reload:)."""
    return tuple(
        name
        for name in sandbox.rotators
        if sandbox.spec.services[name].reload != "none" and name in sandbox.handles
    )


@asynccontextmanager
async def _step(sandbox: Sandbox) -> AsyncIterator[None]:
    """One change of the CA's material: the services told reload inside the block; the sandbox's
    file watch is brought up to date at its end (its own rewrite and reload happen now, not at a
    tick in the middle of the next step); every reload is over when it is left
    (`trustproof.sandbox.reloads`: nginx's old workers keep serving the old files a while)."""
    async with reloads.awaited(sandbox, told(sandbox)):
        yield
        if sandbox.trust_files is not None:
            sandbox.trust_files.check()


async def publish_bundle(sandbox: Sandbox) -> BundleChange:
    """The CA's current bundle and CRLs to every holder (see the module docstring)."""
    fabric = _fabric(sandbox)
    pem = fabric.ca.bundle_pem()
    for gateway in sandbox.gateways.values():
        gateway.trust_bundle(pem)
    trust(fabric.server.context, pem)
    for proxy in sandbox.egress.values():  # its subscriber below rebuilds it with this bundle
        token_url, audience, _ = proxy._source_args
        proxy._source_args = (token_url, audience, pem)
    for rotator in sandbox.rotators.values():
        rotator.publish_bundle()  # bundle.pem; subscribers: crl.pem, gateway, proxies, reload
    for rotator in fabric.rotators.values():
        rotator.publish_bundle()  # the token service's certificate, the admin files
    for server in sandbox.datastores.servers.values():
        await asyncio.to_thread(server.refresh_crl)
    return BundleChange(tuple(c.serial_number for c in fabric.ca.bundle), told(sandbox))


async def publish_to_servers(sandbox: Sandbox) -> BundleChange:
    """The CA's current bundle and CRLs to those that verify client certificates — the gateways,
    the token service, each workload's ``bundle.pem`` and ``crl.pem`` (the services that reload
    told) — but not the clients (egress proxies, datastores, admin files): for a root that only
    client certificates chain to (the temporary intermediate's), whose servers' certificates
    do not change."""
    fabric = _fabric(sandbox)
    pem = fabric.ca.bundle_pem()
    for gateway in sandbox.gateways.values():
        gateway.trust_bundle(pem)
    trust(fabric.server.context, pem)
    for rotator in sandbox.rotators.values():
        write_atomically(rotator.files.bundle, pem, PUBLIC_MODE)
    return await publish_crls(sandbox)


async def publish_crls(sandbox: Sandbox) -> BundleChange:
    """The CA's current CRLs to every ``crl.pem``, and the services that reload told. (The
    datastores' are not rewritten: only the temporary CAs' CRLs change, and no client of theirs
    presents a chain through them.)"""
    fabric = _fabric(sandbox)
    for name, rotator in sandbox.rotators.items():
        write_crl(fabric.ca, rotator.files.directory)
        if name in told(sandbox):
            sandbox._on_rotation(name, rotator.current)
    return BundleChange(tuple(c.serial_number for c in fabric.ca.bundle), told(sandbox))


async def add_root(sandbox: Sandbox) -> BundleChange:
    async with _step(sandbox):
        _fabric(sandbox).ca.rotate_root(activate=False)
        return await publish_bundle(sandbox)


async def issue_from_newest_root(sandbox: Sandbox) -> tuple[str, ...]:
    """The newest root issues; every SVID reissued from it (rotation tells each holder)."""
    fabric = _fabric(sandbox)
    async with _step(sandbox):
        fabric.ca.activate_root()
        for rotator in (*sandbox.rotators.values(), *fabric.rotators.values()):
            rotator.rotate()
        for server in sandbox.datastores.servers.values():
            await asyncio.to_thread(server.rotate_server_certificate)
    return (*sandbox.rotators, *fabric.rotators, *sandbox.datastores.servers)


def _root(fabric: TrustFabric, serial: int) -> x509.Certificate:
    for root in fabric.ca.bundle:
        if root.serial_number == serial:
            return root
    raise SandboxError(f"no root with serial {serial:x} is trusted", "was it retired already?")


async def retire_root(sandbox: Sandbox, serial: int) -> BundleChange:
    fabric = _fabric(sandbox)
    async with _step(sandbox):
        fabric.ca.retire_root(_root(fabric, serial))
        return await publish_bundle(sandbox)


@asynccontextmanager
async def ca_rotation(sandbox: Sandbox) -> AsyncIterator[None]:
    """On exit: the newest root issues, every SVID not from it is reissued, bundles published."""
    fabric = _fabric(sandbox)
    try:
        yield
    finally:
        if fabric.ca.bundle and fabric.ca.bundle[-1] != fabric.ca.root:
            fabric.ca.activate_root()
        issuer = fabric.ca.issuer.subject
        rotators = [
            rotator
            for rotator in (*sandbox.rotators.values(), *fabric.rotators.values())
            if rotator.current.certificate.issuer != issuer
        ]
        servers = [
            server
            for server in sandbox.datastores.servers.values()
            if server.server_svid is not None and server.server_svid.certificate.issuer != issuer
        ]
        if rotators or servers or not _published(sandbox):
            async with _step(sandbox):
                for rotator in rotators:
                    rotator.rotate()
                for server in servers:
                    await asyncio.to_thread(server.rotate_server_certificate)
                await publish_bundle(sandbox)


def _published(sandbox: Sandbox) -> bool:
    """Does every workload's ``bundle.pem`` hold the CA's bundle as it is now?"""
    bundle = _fabric(sandbox).ca.bundle_pem()
    try:
        return all(r.files.bundle.read_bytes() == bundle for r in sandbox.rotators.values())
    except OSError:
        return False


def _intermediate(fabric: TrustFabric, ca: TemporaryCa) -> x509.Certificate:
    for certificate in fabric.ca.intermediates:
        if certificate.serial_number == ca.serial:
            return certificate
    raise SandboxError(f"the temporary intermediate {ca.serial:x} is not trusted (any more)")


@asynccontextmanager
async def temporary_intermediate(sandbox: Sandbox) -> AsyncIterator[TemporaryCa]:
    fabric = _fabric(sandbox)
    async with _step(sandbox):
        root, intermediate = fabric.ca.add_intermediate_root()
        await publish_to_servers(sandbox)
    try:
        yield TemporaryCa(
            root.serial_number, intermediate.serial_number, intermediate.subject.rfc4514_string()
        )
    finally:
        async with _step(sandbox):
            fabric.ca.retire_root(root)
            await publish_to_servers(sandbox)


def issue_under(sandbox: Sandbox, ca: TemporaryCa, name: str) -> Svid:
    fabric = _fabric(sandbox)
    return fabric.ca.issue_under(_intermediate(fabric, ca), name, fabric.certificate_ttl)


async def revoke_intermediate(sandbox: Sandbox, ca: TemporaryCa) -> BundleChange:
    fabric = _fabric(sandbox)
    async with _step(sandbox):
        fabric.ca.revoke_intermediate(_intermediate(fabric, ca))
        return await publish_crls(sandbox)


def short_lived_cert(sandbox: Sandbox, name: str, ttl: timedelta) -> Svid:
    fabric = _fabric(sandbox)
    end = sandbox.clock.now() + ttl
    if end.microsecond:
        end = end.replace(microsecond=0) + timedelta(seconds=1)
    return fabric.ca.issue(name, ttl, not_after=end)


async def wait_until(sandbox: Sandbox, when: datetime) -> None:
    while True:
        left = (when - sandbox.clock.now()).total_seconds()
        if left < 0:
            return
        await asyncio.sleep(left + WAIT_SLACK_S)


@contextmanager
def held_by_proxies(sandbox: Sandbox, name: str, svid: Svid) -> Iterator[None]:
    """`name`'s egress proxies present `svid` (with tokens bound to it); its current SVID again
    after. Its rotator is not told: a rotation meanwhile would re-point them (checked by the
    experiment, which compares serials)."""
    proxies = [proxy for (caller, _), proxy in sandbox.egress.items() if caller == name]
    for proxy in proxies:
        proxy.reload_svid(svid)
    try:
        yield
    finally:
        rotator = sandbox.rotators.get(name)
        for proxy in proxies:
            if rotator is not None:
                proxy.reload_svid(rotator.current)
