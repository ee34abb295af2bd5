"""`trustproof doctor`: does this machine have what a run needs? Each check says what it found
and, when something is missing, the exact line that installs it; exit 3 when something a run of
the spec needs is missing (the environment could not start it), 0 otherwise.

What is needed depends on the spec (found like every command finds it; without one, the common
set is checked and the rest reported as optional): PostgreSQL's server programs for datastores,
nginx or HAProxy where a service's command or templates name them, Podman and runc for `image:`
services when no Docker engine is configured. Always: Linux, Python ≥ 3.11,
OpenSSL with TLS 1.3, util-linux's ``setpriv`` (children die with the controller).
"""

from __future__ import annotations

import os
import shutil
import ssl
import sys
from dataclasses import dataclass
from pathlib import Path

import click
from rich.table import Table

from trustproof.cli.base import friendly, out, spec_argument
from trustproof.errors import SandboxError, TrustproofError


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    found: str
    needed: bool = True  # False: reported only
    package: str = ""  # the Debian package that provides it


def checks(spec_file: Path | None) -> list[Check]:
    """Every check, in the order shown."""
    needs = _needs(spec_file)
    return [
        Check("Linux", sys.platform.startswith("linux"), sys.platform),
        Check(
            "Python ≥ 3.11",
            sys.version_info >= (3, 11),
            sys.version.split()[0],
        ),
        Check("OpenSSL with TLS 1.3", ssl.HAS_TLSv1_3, ssl.OPENSSL_VERSION),
        _which("setpriv", "util-linux", needed=True),
        _postgres(needed="postgresql" in needs),
        _which("nginx", "nginx", needed="nginx" in needs, extra=("/usr/sbin/nginx",)),
        _which("haproxy", "haproxy", needed="haproxy" in needs, extra=("/usr/sbin/haproxy",)),
        _which("podman", "podman", needed="podman" in needs),  # image: services, without Docker
        _which("runc", "runc", needed="podman" in needs),
        _which("ip", "iproute2", needed="isolated" in needs),
        _which("nft", "nftables", needed="isolated" in needs, extra=("/usr/sbin/nft",)),
        _isolation(needed="isolated" in needs),
        _netem(),
    ]


def _needs(spec_file: Path | None) -> set[str]:
    if spec_file is None or not spec_file.is_file():
        return set()
    from trustproof.spec import load_spec  # noqa: PLC0415 (only with a spec)

    try:
        spec = load_spec(spec_file, policies=False)
    except TrustproofError:
        return set()
    needs = {"postgresql"} if spec.datastores else set()
    if spec.backend == "isolated":
        needs.add("isolated")
    for service in spec.services.values():
        words = " ".join([*service.command, *(t.src for t in service.templates)]).lower()
        needs |= {name for name in ("nginx", "haproxy") if name in words}
    docker = os.environ.get("DOCKER_HOST") or Path("/var/run/docker.sock").exists()
    if any(service.image for service in spec.services.values()) and not docker:
        needs.add("podman")
    return needs


def _which(name: str, package: str, *, needed: bool, extra: tuple[str, ...] = ()) -> Check:
    path = shutil.which(name) or next((p for p in extra if _executable(p)), None)
    return Check(name, path is not None, path or "not found", needed, package)


def _executable(path: str) -> bool:
    return os.access(path, os.X_OK)


def _postgres(*, needed: bool) -> Check:
    from trustproof.datastores.pgbinaries import find_binaries  # noqa: PLC0415

    try:
        found = find_binaries()
    except TrustproofError:
        return Check(
            "PostgreSQL server (initdb, postgres)", False, "not found", needed, "postgresql"
        )
    return Check(
        "PostgreSQL server (initdb, postgres)", True, str(found.directory), needed, "postgresql"
    )


def _isolation(*, needed: bool) -> Check:
    """The isolated backend (each service in its own network namespace): root, iproute2 and
    nftables; reported only, unless the spec asks for `backend: isolated`."""
    from trustproof.sandbox.choice import isolation_missing  # noqa: PLC0415

    missing = isolation_missing()
    found = "root, ip and nft: services run isolated" if missing is None else missing
    return Check("isolated backend (network namespaces)", missing is None, found, needed)


@click.command()
@spec_argument
@friendly
def doctor(spec_file: Path) -> None:
    """Check this machine for what a run of the spec needs; print the install line."""
    found = checks(spec_file)
    table = Table("", "check", "found", box=None)
    for check in found:
        mark = "[green]✓[/]" if check.ok else ("[red]✗[/]" if check.needed else "[dim]-[/]")
        table.add_row(mark, check.name, check.found)
    out.print(table)
    missing = [c for c in found if c.needed and not c.ok]
    packages = sorted({c.package for c in missing if c.package})
    if packages:
        sudo = "" if os.geteuid() == 0 else "sudo "
        out.print(f"install: {sudo}apt-get install -y {' '.join(packages)}")
    if missing:
        names = ", ".join(c.name for c in missing)
        raise SandboxError(f"missing for this spec: {names}", "install what is listed above")
    out.print("[green]ready[/]: everything this spec needs is here")


COMMANDS: tuple[click.Command, ...] = (doctor,)


def _netem() -> Check:
    """``tc netem`` for network-fault latency on the isolated backend; reported only: without
    it (a kernel with no ``sch_netem``) nftables and a relay do the job."""
    from trustproof.sandbox.netem import netem_status  # noqa: PLC0415

    ok, found = netem_status()
    return Check("tc netem (network-fault, isolated backend)", ok, found, needed=False)
