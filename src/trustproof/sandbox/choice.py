"""Which backend a run uses: ``--backend`` / ``TRUSTPROOF_BACKEND`` over the spec's ``backend``,
and whether this host can run the isolated one.

Apart from the isolated backend itself (`trustproof.sandbox.isolated`, which re-exports these
names) on purpose: `trustproof plan` says which backend `run` would use, and importing the
namespaces, relays and resolver for that would cost more than the rest of the command.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from typing import Literal

from trustproof.errors import SandboxError

BackendKind = Literal["local", "isolated"]
BackendChoice = Literal["auto", "local", "isolated"]
CHOICES: tuple[BackendChoice, ...] = ("auto", "local", "isolated")
ENV = "TRUSTPROOF_BACKEND"


def isolation_missing() -> str | None:
    """Why this host cannot run the isolated backend, in one line; None when it can."""
    if os.geteuid() != 0:
        return "not running as root"
    if system_tool("ip") is None:
        return "iproute2's `ip` is not installed"
    if system_tool("nft") is None:
        return "nftables' `nft` is not installed"
    return None


def system_tool(name: str) -> str | None:
    """The path of an administration command (``ip``, ``nft``): on the PATH, else in the sbin
    directories a non-login shell's PATH may lack; None when it is not installed."""
    return shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/sbin/{name}") if os.access(p, os.X_OK)), None
    )


def resolve_choice(
    requested: str | None, spec_choice: str, notice: Callable[[str], None]
) -> BackendKind:
    """Which backend runs: `requested` (``--backend`` / ``TRUSTPROOF_BACKEND``) over the spec's
    ``backend``. ``auto`` is isolated where the host allows it, else local with a one-line
    `notice`; an explicit ``isolated`` the host cannot run is a `SandboxError` (never a silent
    downgrade)."""
    choice = requested or spec_choice
    if choice not in CHOICES:
        raise SandboxError(
            f"unknown backend {choice!r} (from {ENV} or --backend)",
            "expected one of: " + ", ".join(CHOICES),
        )
    if choice == "local":
        return "local"
    missing = isolation_missing()
    if missing is None:
        return "isolated"
    if choice == "isolated":
        raise SandboxError(
            f"the isolated backend cannot run here: {missing}",
            "run as root with iproute2 and nftables installed, or use `--backend local`",
        )
    notice(f"backend: local (no network isolation: {missing})")
    return "local"
