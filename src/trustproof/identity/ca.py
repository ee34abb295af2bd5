"""An in-memory certificate authority for one run: short-lived X.509-SVIDs, CRLs, root rotation.

Each run creates its own CA; nothing outlives the process. A *generation* is one root key (and,
with ``intermediate=True``, one intermediate under it that signs the leaves). `rotate_root()`
starts a new generation that issues every new leaf while the old roots stay in `bundle`, so
certificates already handed out keep verifying; `prune_roots()` drops an old root once the last
leaf it issued has expired. That is CA rotation without an outage.

Revocation is published as CRLs, one per CA key in the bundle (roots and intermediates alike):
nginx (``ssl_crl``) and PostgreSQL (``ssl_crl_file``) turn on OpenSSL's ``CRL_CHECK_ALL``, which
refuses a chain as soon as any CA in it has no CRL, so an empty CRL is published for every CA.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from trustproof.clock import Clock
from trustproof.identity.errors import IdentityError
from trustproof.identity.generation import Generation, make_generation
from trustproof.identity.leaf import leaf_template
from trustproof.identity.material import (
    LeafTemplate,
    PrivateKey,
    make_crl,
    new_ec_key,
    sign_leaf,
)
from trustproof.identity.spiffe import SpiffeId, check_trust_domain
from trustproof.identity.svid import Svid
from trustproof.scrub import Secret

CA_BACKDATE = timedelta(hours=1)
"""How far CA certificates reach into the past, so that material minted with past timestamps
(expired probes, skewed clocks) still falls inside its issuer's validity."""


class CertificateAuthority:
    """Issues SVIDs ``spiffe://<trust_domain>/<name>`` signed with ECDSA P-256 / SHA-256.

    `clock` decides "now" for every timestamp; `backdate` moves each leaf's not_before into the
    past to absorb small clock differences between processes; `root_ttl` is how long each root
    (and intermediate) is valid.
    """

    def __init__(
        self,
        trust_domain: str,
        clock: Clock,
        *,
        intermediate: bool = False,
        root_ttl: timedelta = timedelta(hours=24),
        backdate: timedelta = timedelta(seconds=30),
    ) -> None:
        self.trust_domain = check_trust_domain(trust_domain)
        if root_ttl <= timedelta(0) or backdate < timedelta(0):
            raise IdentityError(
                f"expected root_ttl > 0 and backdate >= 0, got root_ttl={root_ttl}, "
                f"backdate={backdate}"
            )
        self.clock = clock
        self.uses_intermediate = intermediate
        self.root_ttl = root_ttl
        self.backdate = backdate
        self._lock = threading.RLock()
        self._generations: list[Generation] = []
        self._active: Generation = self._new_generation()
        self._issued: dict[int, Generation] = {}
        self._revoked: dict[int, datetime] = {}
        self._crl_number = 0
        self._crl_pem: bytes | None = None
        self._retired: dict[int, int] = {}  # leaf serial -> serial of its retired root

    def __repr__(self) -> str:
        return (
            f"CertificateAuthority({self.trust_domain!r}, generation={self._active.number}, "
            f"roots={len(self._generations)}, intermediate={self.uses_intermediate})"
        )

    # -- the trust bundle ----------------------------------------------------------------------

    @property
    def root(self) -> x509.Certificate:
        """The root that new leaves chain to."""
        return self._active.root

    @property
    def issuer(self) -> x509.Certificate:
        """What signs new leaves: the intermediate if there is one, else the root."""
        return self._active.signer

    @property
    def bundle(self) -> tuple[x509.Certificate, ...]:
        """Every trusted root, oldest first: the current one and any not yet pruned."""
        with self._lock:
            return tuple(g.root for g in self._generations)

    @property
    def intermediates(self) -> tuple[x509.Certificate, ...]:
        """The intermediates under every root in the bundle (empty without ``intermediate=True``).

        Not trust anchors: candidates for building a peer's chain when the TLS library only
        exposes the leaf (Python's `ssl` before 3.13 has no ``get_unverified_chain()``).
        """
        with self._lock:
            return tuple(c for g in self._generations for c in g.intermediates)

    def bundle_pem(self) -> bytes:
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.bundle)

    # -- issuing -------------------------------------------------------------------------------

    def template(
        self,
        name: str,
        ttl: timedelta,
        *,
        dns: Sequence[str] = (),
        ips: Sequence[str] = (),
        not_before: datetime | None = None,
        not_after: datetime | None = None,
    ) -> LeafTemplate:
        """The valid leaf `issue` would sign, before signing; broken material starts from here."""
        return leaf_template(
            SpiffeId.for_name(self.trust_domain, name),
            name,
            ttl,
            now=self.clock.now(),
            backdate=self.backdate,
            dns=dns,
            ips=ips,
            not_before=not_before,
            not_after=not_after,
        )

    def issue(
        self,
        name: str,
        ttl: timedelta,
        *,
        dns: Sequence[str] = (),
        ips: Sequence[str] = (),
        not_before: datetime | None = None,
        not_after: datetime | None = None,
    ) -> Svid:
        """A fresh key and an SVID for ``spiffe://<trust_domain>/<name>`` with CN = `name`.

        Valid from now - backdate (or `not_before`) to now + `ttl` (or `not_after`).
        """
        template = self.template(
            name, ttl, dns=dns, ips=ips, not_before=not_before, not_after=not_after
        )
        ca_end = self._active.signer.not_valid_after_utc
        if template.not_after > ca_end:
            raise IdentityError(
                f"the certificate for {name!r} would outlive its CA: it ends "
                f"{template.not_after.isoformat()}, the CA ends {ca_end.isoformat()}\n"
                "    hint: call rotate_root() first, or give the CA a longer root_ttl"
            )
        return self.mint(template)

    def mint(self, template: LeafTemplate, *, key: PrivateKey | None = None) -> Svid:
        """Sign `template` exactly as given with the current issuer; no policy checks.

        This is the low-level door `trustproof.identity.broken` uses; `issue` is the normal one.
        The leaf is recorded so that it can be revoked and so that its root is kept until it
        expires.
        """
        with self._lock:
            return self._sign(self._active, template, key)

    def _sign(self, generation: Generation, template: LeafTemplate, key: PrivateKey | None) -> Svid:
        """Sign `template` with what signs `generation`'s leaves and record the leaf (so that it
        can be revoked, and its root is kept until it expires). Call with the lock held."""
        key = key if key is not None else new_ec_key()
        certificate = sign_leaf(
            template,
            key.public_key(),
            issuer_name=generation.signer.subject,
            signing_key=generation.signer_key.reveal(),
        )
        self._issued[certificate.serial_number] = generation
        end = certificate.not_valid_after_utc
        latest = generation.latest_leaf_not_after
        if latest is None or end > latest:
            generation.latest_leaf_not_after = end
        spiffe_id = SpiffeId.for_name(self.trust_domain, template.common_name)
        return Svid(spiffe_id, certificate, generation.intermediates, Secret(key))

    # -- revocation ----------------------------------------------------------------------------

    def revoke(self, serial_or_svid: int | Svid | x509.Certificate) -> None:
        """Put a leaf this CA issued on its issuer's CRL (at once; revoking twice is harmless)."""
        if isinstance(serial_or_svid, Svid):
            serial = serial_or_svid.serial
        elif isinstance(serial_or_svid, x509.Certificate):
            serial = serial_or_svid.serial_number
        else:
            serial = serial_or_svid
        with self._lock:
            if serial not in self._issued:
                raise IdentityError(
                    f"cannot revoke serial {serial:x}: this CA did not issue it (or its root was "
                    "pruned)\n    hint: revoke the Svid returned by issue() on the same CA"
                )
            self._revoked.setdefault(serial, self.clock.now())
            self._crl_pem = None

    def is_revoked(self, serial: int) -> bool:
        """Whether `serial` may no longer be trusted: revoked itself, issued by a revoked
        intermediate (`revoke_intermediate`), or issued under a retired root (`retire_root`).
        A verifier that cached a chain check still learns of a withdrawn issuer here."""
        with self._lock:
            return serial in self._revoked or self._withdrawn_by(serial) is not None

    def crl_pem(self) -> bytes:
        """One CRL per CA key in the bundle, PEM, concatenated; each signed by its CA.

        nextUpdate is the end of the signing CA's validity; the CRLs are re-signed whenever a
        serial is revoked or the set of roots changes, so a reader only needs to reload the file.
        """
        with self._lock:
            if self._crl_pem is None:
                self._crl_pem = self._make_crls()
            return self._crl_pem

    def stale_crl_pem(self, age: timedelta) -> bytes:
        """The CRLs as `crl_pem` (the same revoked serials), but issued `age` ago and with a
        nextUpdate already passed (half of `age` ago): what a reader must not trust. For the
        chaos experiments; not cached, never written by the CA itself."""
        with self._lock:
            now = self.clock.now()
            return self._make_crls(this_update=now - age, next_update=now - age / 2)

    def _make_crls(
        self, *, this_update: datetime | None = None, next_update: datetime | None = None
    ) -> bytes:
        self._crl_number += 1
        this_update = this_update or self.clock.now() - self.backdate
        out: list[bytes] = []
        for generation in self._generations:
            for cert, key in generation.ca_keys():
                revoked = [
                    (serial, when)
                    for serial, when in self._revoked.items()
                    if self._issued.get(serial) is generation and cert is generation.signer
                ]
                if cert is generation.root:  # its intermediates revoked (`revoke_intermediate`)
                    revoked += [
                        (c.serial_number, self._revoked[c.serial_number])
                        for c in generation.intermediates
                        if c.serial_number in self._revoked
                    ]
                crl = make_crl(
                    cert,
                    key,
                    revoked,
                    number=self._crl_number,
                    this_update=this_update,
                    next_update=next_update or cert.not_valid_after_utc,
                )
                out.append(crl.public_bytes(serialization.Encoding.PEM))
        return b"".join(out)

    # -- rotation ------------------------------------------------------------------------------

    def rotate_root(self, *, activate: bool = True) -> x509.Certificate:
        """Add a new root (and intermediate) to the bundle and, by default, issue from it.

        With ``activate=False`` the new root is only trusted; call `activate_root()` once every
        peer has reloaded the bundle, so no peer ever sees a leaf it cannot yet verify.
        """
        with self._lock:
            generation = self._new_generation()
            if activate:
                self._active = generation
            self._crl_pem = None
            return generation.root

    def activate_root(self) -> x509.Certificate:
        """Make the newest root (added by ``rotate_root(activate=False)``) the issuer."""
        with self._lock:
            self._active = self._generations[-1]
            return self._active.root

    def prune_roots(self) -> tuple[x509.Certificate, ...]:
        """Remove roots older than the issuing one whose last leaf has expired; return them."""
        with self._lock:
            now = self.clock.now()
            active = self._generations.index(self._active)
            removed = [
                g
                for g in self._generations[:active]
                if g.latest_leaf_not_after is None or g.latest_leaf_not_after < now
            ]
            if not removed:
                return ()
            self._generations = [g for g in self._generations if g not in removed]
            self._issued = {s: g for s, g in self._issued.items() if g not in removed}
            self._crl_pem = None
            return tuple(g.root for g in removed)

    def _new_generation(self) -> Generation:
        number = self._generations[-1].number + 1 if self._generations else 1
        now = self.clock.now()
        generation = make_generation(
            number,
            f"trustproof {self.trust_domain}",
            (now - CA_BACKDATE, now + self.root_ttl),
            intermediate=self.uses_intermediate,
        )
        self._generations.append(generation)
        return generation

    # -- withdrawing trust: temporary intermediates, retired roots (trust chaos) -----------------

    def add_intermediate_root(self) -> tuple[x509.Certificate, x509.Certificate]:
        """A temporary root (path length 1) with an intermediate CA under it, trusted (the root
        in `bundle`, the intermediate in `intermediates`, each with its CRL) but not issuing:
        leaves come from it through `issue_under` only. Returns (root, intermediate).

        The run's own roots allow no CA below them (path length 0 without
        ``intermediate=True``), so an intermediate needs a root of its own; `retire_root` takes
        both away again.
        """
        with self._lock:
            number = self._generations[-1].number + 1
            now = self.clock.now()
            generation = make_generation(
                number,
                f"trustproof {self.trust_domain}",
                (now - CA_BACKDATE, now + self.root_ttl),
                intermediate=True,
                label="temporary ",
            )
            self._generations.append(generation)
            self._crl_pem = None
            return generation.root, generation.signer

    def issue_under(self, ca_certificate: x509.Certificate, name: str, ttl: timedelta) -> Svid:
        """An SVID for `name` under `ca_certificate` (a root or intermediate in the bundle),
        signed by what signs that root's leaves — its intermediate, or the root itself — and sent
        with its intermediates. A root added with ``rotate_root(activate=False)`` too: to test
        who trusts it before it issues."""
        template = self.template(name, ttl)
        with self._lock:
            return self._sign(self._generation_of(ca_certificate), template, None)

    def revoke_intermediate(self, intermediate: x509.Certificate) -> None:
        """Put an intermediate on its root's CRL; every leaf under it is refused from now on
        (`is_revoked` says so for the leaves too)."""
        with self._lock:
            generation = self._generation_of(intermediate)
            if intermediate not in generation.intermediates:
                raise IdentityError(
                    f"{intermediate.subject.rfc4514_string()} is not an intermediate of this CA\n"
                    "    hint: revoke a root by retire_root(), a leaf by revoke()"
                )
            self._revoked.setdefault(intermediate.serial_number, self.clock.now())
            self._crl_pem = None

    def retire_root(self, root: x509.Certificate) -> None:
        """Withdraw trust in `root` now, whatever its leaves' lifetimes (an emergency, the end of
        an overlap, a temporary root no longer wanted): it leaves `bundle`, its intermediates
        leave `intermediates`, and `is_revoked` is true for every leaf it issued, so a verifier
        that cached a chain check refuses them too. The issuing root cannot be retired."""
        with self._lock:
            generation = self._generation_of(root)
            if generation.root != root:
                raise IdentityError(
                    f"{root.subject.rfc4514_string()} is not a root of this CA\n"
                    "    hint: revoke an intermediate by revoke_intermediate()"
                )
            if generation is self._active:
                raise IdentityError(
                    "the issuing root cannot be retired\n"
                    "    hint: rotate_root() (or activate_root()) first, then retire the old one"
                )
            for serial, issuer in list(self._issued.items()):
                if issuer is generation:
                    self._retired[serial] = root.serial_number
                    del self._issued[serial]
            self._generations.remove(generation)
            self._crl_pem = None

    def withdrawn(self, serial: int) -> Literal["leaf", "intermediate", "root"] | None:
        """Why a certificate this CA issued is no longer trusted: revoked itself (``leaf``), its
        intermediate revoked, its root retired; None while it is trusted."""
        with self._lock:
            if serial in self._revoked:
                return "leaf"
            return self._withdrawn_by(serial)

    def _withdrawn_by(self, serial: int) -> Literal["intermediate", "root"] | None:
        if serial in self._retired:
            return "root"
        generation = self._issued.get(serial)
        if generation is not None and any(
            c.serial_number in self._revoked for c in generation.intermediates
        ):
            return "intermediate"
        return None

    def _generation_of(self, ca_certificate: x509.Certificate) -> Generation:
        for generation in self._generations:
            if ca_certificate == generation.root or ca_certificate in generation.intermediates:
                return generation
        raise IdentityError(
            f"{ca_certificate.subject.rfc4514_string()} is not a CA certificate in this CA's "
            "bundle\n    hint: was it retired already?"
        )
