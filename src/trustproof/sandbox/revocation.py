"""Revoking a certificate in a running sandbox, so that every boundary learns it.

The CA's revocation list is read in memory by trustproof's gateways, egress proxies and token
service (they see a revocation at once); servers trustproof did not write read the CRL file
(``crl.pem`` next to each workload's SVID files, `TRUSTPROOF_CRL_FILE`), so `revoke_in_sandbox`
rewrites every copy and then tells each service whose spec declares ``reload:`` (SIGHUP or a
restart), as after a certificate rotation. A service with ``reload: none`` only sees the new CRL
when it reads the file by itself.

`revoke_by_name` revokes the certificate a workload presents now and renews it at once (the
renewal tells the service too), so that the workload keeps a valid identity while the revoked
one is refused everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from trustproof.errors import SandboxError, UsageError
from trustproof.identity.errors import IdentityError
from trustproof.sandbox.controller import Sandbox
from trustproof.sandbox.services import write_crl


@dataclass(frozen=True)
class Revocation:
    """What was revoked (serials in hex) and which services were told to reload."""

    serials: tuple[str, ...]
    reloaded: tuple[str, ...]
    renewed: str = ""  # the workload whose SVID was renewed after the revocation

    def to_json(self) -> dict[str, object]:
        return {
            "serials": list(self.serials),
            "reloaded": list(self.reloaded),
            "renewed": self.renewed,
        }


def revoke_in_sandbox(sandbox: Sandbox, serial: int) -> Revocation:
    """Put `serial` (a certificate this sandbox's CA issued) on the CRL, rewrite every CRL file
    and tell the services that reload; a clear error for a serial this CA did not issue."""
    fabric = sandbox.fabric
    if fabric is None:
        raise SandboxError("the sandbox is not running", "start it first (`trustproof up`)")
    try:
        fabric.ca.revoke(serial)
    except IdentityError as exc:
        raise UsageError(
            str(exc).split("\n", 1)[0], "pass a serial printed by `trustproof cert`"
        ) from None
    reloaded = []
    watch = sandbox.trust_files
    for name, rotator in sandbox.rotators.items():
        if watch is None or not watch.holds(name):  # a fault's CRL stays until its rollback
            write_crl(fabric.ca, rotator.files.directory)
        if sandbox.spec.services[name].reload != "none" and name in sandbox.handles:
            sandbox._on_rotation(name, rotator.current)
            reloaded.append(name)
    return Revocation((f"{serial:x}",), tuple(reloaded))


def revoke_by_name(sandbox: Sandbox, name: str) -> Revocation:
    """Revoke the SVID workload `name` presents now, then renew it (the renewal rewrites its
    files and tells it, like any rotation)."""
    rotator = sandbox.rotators.get(name)
    if rotator is None:
        known = ", ".join(sandbox.rotators) or "none"
        raise UsageError(
            f"{name!r} is not a workload of this sandbox (workloads: {known})",
            "a persona's certificate from `trustproof cert` is revoked with --serial",
        )
    done = revoke_in_sandbox(sandbox, rotator.current.serial)
    rotator.rotate()
    return Revocation(done.serials, done.reloaded, renewed=name)


def parse_serial(text: str) -> int:
    """A certificate serial given in hex (as `trustproof cert` prints it; ``0x`` and colons
    allowed)."""
    cleaned = text.strip().lower().removeprefix("0x").replace(":", "")
    try:
        serial = int(cleaned, 16)
    except ValueError:
        serial = -1
    if serial <= 0:
        raise UsageError(
            f"{text[:60]!r} is not a certificate serial",
            "give it in hex, as `trustproof cert` prints it (e.g. 5f3a...)",
        )
    return serial
