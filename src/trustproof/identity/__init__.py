"""Workload identity: SPIFFE IDs, a per-run certificate authority and X.509-SVIDs.

Core layer: no sockets, no subprocesses, time from an injected `trustproof.clock.Clock`; only
`rotation` writes files (the SVIDs a service reads), and `foreign` reads the CA files a spec
names. The pieces, one trust concept per module:

* `spiffe` — `SpiffeId`: parse and check ``spiffe://<trust-domain>/<path>``;
* `svid` — `Svid`: leaf + intermediates + private key (kept out of every ``repr``), and the RFC 8705
  thumbprint `x5t_s256` that binds tokens to a certificate;
* `ca` — `CertificateAuthority`: issues short-lived SVIDs (ECDSA P-256), revokes them into CRLs,
  rotates its root without an outage; `generation` makes each of its root (+ intermediate)
  generations, `leaf` checks a leaf's validity and names before it is signed;
* `verify` — `verify_svid`: the decision a gateway makes about a peer certificate, as an
  `SvidCheck` with a stable `reason`, never an exception; `chains` — `VerifiedChains`, the chains
  it already verified, reused for the same leaf and bundle;
* `broken` — `BrokenMaterial`: expired, untrusted, revoked, ... SVIDs for probes, each with its
  expected reason;
* `sha1` — re-signing over SHA-1, for the one broken kind that needs it;
* `foreign` — the CAs a spec declares foreign (`tls.foreign_cas`), read and checked;
* `rotation` — `Rotator` and `write_svid_files`: fresh files on disk and a callback to reload.
"""

from __future__ import annotations

from trustproof.identity.broken import EXPECTED_REASON, BrokenMaterial
from trustproof.identity.ca import CertificateAuthority
from trustproof.identity.errors import IdentityError, InvalidSpiffeId
from trustproof.identity.material import LeafTemplate, PrivateKey
from trustproof.identity.rotation import Rotator, SvidFiles, write_svid_files
from trustproof.identity.spiffe import SpiffeId
from trustproof.identity.svid import Svid, x5t_s256
from trustproof.identity.verify import REASONS, Reason, SvidCheck, verify_svid

__all__ = [
    "EXPECTED_REASON",
    "REASONS",
    "BrokenMaterial",
    "CertificateAuthority",
    "IdentityError",
    "InvalidSpiffeId",
    "LeafTemplate",
    "PrivateKey",
    "Reason",
    "Rotator",
    "SpiffeId",
    "Svid",
    "SvidCheck",
    "SvidFiles",
    "verify_svid",
    "write_svid_files",
    "x5t_s256",
]
