"""The values the view's trust-fault methods take and give (`SandboxView.token_service_fault`,
`fetch_token`, `hot_reload`, ...): what the chaos experiments (`trustproof.chaos.experiment`)
break and what they read back. No I/O beyond `rss_kib`, which reads this process's own status.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

IdpMode = Literal["stopped", "error", "slow"]
ReloadOutcome = Literal["accepted", "rejected"]


@dataclass(frozen=True)
class IdpFault:
    """How the token service fails: ``stopped`` (nothing listens on its port: connection
    refused), ``error`` (every request answered HTTP 500), ``slow`` (every answer `delay_s`
    late)."""

    mode: IdpMode
    delay_s: float = 2.0


NetMode = Literal["latency", "loss", "reset"]


@dataclass(frozen=True)
class NetFault:
    """How the network on a trust path fails — to the token service, or on a service link
    (`NetPath` says by which mechanism): ``latency`` (each chunk `latency_s` late, both ways),
    ``loss`` (a `loss` fraction of the connections blackholed, given up after `hold_s`),
    ``reset`` (every connection reset)."""

    mode: NetMode
    latency_s: float = 0.2
    loss: float = 0.5
    hold_s: float = 1.0


@dataclass(frozen=True)
class TokenFetch:
    """What one client-credentials grant at the token service got (never the token itself):
    `status` None when no HTTP answer came (`detail` says why), else the status and the OAuth
    error code, if any."""

    status: int | None
    detail: str
    elapsed_ms: float

    @property
    def ok(self) -> bool:
        return self.status == 200


@dataclass(frozen=True)
class PolicyReload:
    """What the gateways' policy hot reload did with a policy set it was offered."""

    outcome: ReloadOutcome
    version_before: int
    version_after: int
    reason: str  # why it was rejected ("" when accepted)
    recorded: bool  # the attempt was written to the audit log


def rss_kib() -> int:
    """This process's resident memory in KiB (0 where /proc is not there)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return 0


ChaosFlaw = Literal[
    "idp-fail-open",  # a service that introspects allows what it cannot check, token service down
    "keeps-compromised-key",  # an emergency rotation leaves the old key verifying
    "reload-allows-all",  # an invalid policy on reload is replaced by allow-all
    "policy-error-allows",  # a policy whose evaluation fails is read as an allow
    "audit-fail-open",  # requests are forwarded when the audit log cannot be written
    "garbage-keys-skip-verify",  # a service whose key files hold garbage takes any token
    "egress-retries-plaintext",  # an egress proxy whose callee's gateway is unreachable sends
    # the call straight to the callee's own port, in plain HTTP, without the gateway's decision
    "wrong-keys-accepted",  # a service skips the signature check for a kid its JWKS lacks
    "stale-crl-accepted",  # a service ignores a CRL past its nextUpdate (and whom it lists)
    "missing-crl-accepted",  # a service reloaded without its CRL file stops checking CRLs
    "keeps-retired-root",  # a certificate of a root removed from the bundle is still accepted
    "ignores-intermediate-revocation",  # a leaf under a revoked intermediate is still accepted
    "accepts-expired-cert",  # an expired client certificate is accepted
]
"""What a fake server does wrong under a trust fault (`FakeServer.chaos_flaws`)."""


NetMechanism = Literal["fault-proxy", "netem", "nft+relay"]


@dataclass(frozen=True)
class NetPath:
    """How a network fault on a service-to-service link was put in place
    (`SandboxView.service_path_fault`): `mechanism` — ``fault-proxy`` (a TCP fault proxy on
    loopback between the egress proxy and the callee's gateway: the local backend),
    ``netem`` (``tc netem`` on the caller's namespace's loopback), ``nft+relay`` (an nftables
    rule and a relay in the caller's namespace: the isolated backend when the kernel has no
    netem); `detail` says where, and why netem was not used."""

    mechanism: NetMechanism
    detail: str


@dataclass(frozen=True)
class WrongKeys:
    """A well-formed JWK Set (and the same public keys as PEM) of keys the token service does not
    hold: one under the active key's ``kid`` with another public key, others (EC and RSA) under
    kids of their own (`SandboxView.jwks_wrong_keys`). Public keys only: nothing secret."""

    jwks: bytes
    pems: tuple[bytes, ...]  # each key's SubjectPublicKeyInfo, PEM, in the JWK Set's order
    kids: tuple[str, ...]


CrlMode = Literal["stale", "missing"]
"""How a service's CRL file is broken (`SandboxView.crl_fault`): ``stale`` (a CRL signed by the
CA, listing what is revoked, whose nextUpdate has passed), ``missing`` (the file removed)."""


@dataclass(frozen=True)
class TemporaryCa:
    """A temporary root and the intermediate CA under it (`SandboxView.temporary_intermediate`),
    by serial: trusted in every bundle while the experiment holds it."""

    root_serial: int
    serial: int  # the intermediate's
    subject: str  # the intermediate's, RFC 4514

    def describe(self) -> str:
        return f"intermediate {self.subject} (serial {self.serial:x})"


@dataclass(frozen=True)
class BundleChange:
    """What publishing the trust bundle reached (`SandboxView.add_root`, `retire_root`, ...):
    the roots now trusted and the services told to reload their files."""

    roots: tuple[int, ...]  # serials, oldest first
    told: tuple[str, ...]
