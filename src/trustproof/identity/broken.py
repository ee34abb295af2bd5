"""Deliberately broken X.509-SVIDs for probes, each differing from a valid twin in one thing only.

Every method starts from the template `CertificateAuthority.issue` would sign for the same name
(same CN, SANs, TTL and key type) and changes exactly what its name says, so that a refusal can
be pinned on that one difference. `EXPECTED_REASON` maps each kind to the reason
`trustproof.identity.verify.verify_svid` must give; a boundary that accepts one of these is broken.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import timedelta
from types import MappingProxyType

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from trustproof.clock import Clock
from trustproof.identity.ca import CA_BACKDATE, CertificateAuthority
from trustproof.identity.material import (
    SERVER_AUTH,
    LeafTemplate,
    PrivateKey,
    common_name,
    make_ca_certificate,
    new_ec_key,
    sign_leaf,
)
from trustproof.identity.spiffe import SpiffeId
from trustproof.identity.svid import Svid
from trustproof.identity.verify import Reason
from trustproof.scrub import Secret

FOREIGN_TRUST_DOMAIN = "evil.test"

EXPECTED_REASON: Mapping[str, Reason] = MappingProxyType(
    {
        "expired": "expired",
        "not_yet_valid": "not-yet-valid",
        "wrong_trust_domain": "wrong-trust-domain",
        "self_signed": "untrusted",
        "untrusted_ca": "untrusted",
        "no_client_auth": "missing-client-auth",
        "two_uri_sans": "multiple-spiffe-ids",
        "no_uri_san": "no-spiffe-id",
        "weak_key": "weak-key",
        "revoked": "revoked",
        "ca_as_client": "ca-certificate",
        "sha1_signature": "weak-signature",
    }
)
"""Kind (a `BrokenMaterial` method name) -> the reason `verify_svid` gives for it."""

WEAK_RSA_BITS = 1024


class BrokenMaterial:
    """Mints broken SVIDs from `ca`'s own templates.

    `ttl` is the lifetime of every certificate (valid or not); expired and not-yet-valid ones are
    shifted by `ttl + skew`, so that they stay broken even for a peer whose clock is `skew` off.
    """

    def __init__(
        self,
        ca: CertificateAuthority,
        clock: Clock,
        *,
        ttl: timedelta = timedelta(minutes=5),
        skew: timedelta = timedelta(minutes=5),
        dns: tuple[str, ...] = (),
        ips: tuple[str, ...] = (),
    ) -> None:
        self.ca = ca
        self.clock = clock
        self.ttl = ttl
        self.skew = skew
        self.dns = dns
        self.ips = ips

    def __repr__(self) -> str:
        return f"BrokenMaterial({self.ca!r})"

    def make(self, kind: str, name: str) -> Svid:
        """The broken SVID of `kind` (a key of `EXPECTED_REASON`) for `name`."""
        if kind not in EXPECTED_REASON:
            raise ValueError(
                f"unknown kind of broken material {kind!r}; expected one of "
                f"{', '.join(EXPECTED_REASON)}"
            )
        method: Callable[[str], Svid] = getattr(self, kind)
        return method(name)

    def valid(self, name: str) -> Svid:
        """The passing twin: what every other method starts from, issued as is."""
        return self.ca.issue(name, self.ttl, dns=self.dns, ips=self.ips)

    def _template(self, name: str) -> LeafTemplate:
        return self.ca.template(name, self.ttl, dns=self.dns, ips=self.ips)

    def _shifted(self, name: str, direction: int) -> Svid:
        template = self._template(name)
        shift = (self.ttl + self.skew) * direction
        return self.ca.mint(
            dataclasses.replace(
                template,
                not_before=template.not_before + shift,
                not_after=template.not_after + shift,
            )
        )

    def expired(self, name: str) -> Svid:
        """Ended `skew` before now."""
        return self._shifted(name, -1)

    def not_yet_valid(self, name: str) -> Svid:
        """Starts `ttl + skew` after now (minus the CA's backdate)."""
        return self._shifted(name, +1)

    def wrong_trust_domain(self, name: str) -> Svid:
        """Signed by the real CA, but for ``spiffe://evil.test/<name>``."""
        foreign = SpiffeId.for_name(FOREIGN_TRUST_DOMAIN, name)
        svid = self.ca.mint(dataclasses.replace(self._template(name), uris=(str(foreign),)))
        return dataclasses.replace(svid, spiffe_id=foreign)

    def self_signed(self, name: str) -> Svid:
        """The right SPIFFE ID, signed by its own key: no CA vouches for it."""
        template = self._template(name)
        key = new_ec_key()
        own_name = common_name(template.common_name)
        cert = sign_leaf(template, key.public_key(), issuer_name=own_name, signing_key=key)
        return Svid(SpiffeId.parse(template.uris[0]), cert, (), Secret(key))

    def untrusted_ca(self, name: str) -> Svid:
        """Signed by an impostor root (and intermediate) with the real ones' names, not trusted."""
        template = self._template(name)
        now = self.clock.now()
        start, end = now - CA_BACKDATE, now + self.ca.root_ttl
        root_key = new_ec_key()
        root = make_ca_certificate(
            self.ca.root.subject,
            root_key,
            not_before=start,
            not_after=end,
            path_length=1 if self.ca.uses_intermediate else 0,
        )
        signer, signer_key = root, root_key
        intermediates: tuple[x509.Certificate, ...] = ()
        if self.ca.uses_intermediate:
            signer_key = new_ec_key()
            signer = make_ca_certificate(
                self.ca.issuer.subject,
                signer_key,
                not_before=start,
                not_after=end,
                path_length=0,
                parent=(root, root_key),
            )
            intermediates = (signer,)
        key = new_ec_key()
        cert = sign_leaf(
            template, key.public_key(), issuer_name=signer.subject, signing_key=signer_key
        )
        return Svid(SpiffeId.parse(template.uris[0]), cert, intermediates, Secret(key))

    def no_client_auth(self, name: str) -> Svid:
        """Extended key usage serverAuth only: fine for a server, refused as a client."""
        return self.ca.mint(dataclasses.replace(self._template(name), ekus=(SERVER_AUTH,)))

    def two_uri_sans(self, name: str) -> Svid:
        """Two SPIFFE IDs in one certificate: ``<name>`` and ``<name>-twin``."""
        template = self._template(name)
        second = SpiffeId.for_name(self.ca.trust_domain, f"{name}-twin")
        return self.ca.mint(dataclasses.replace(template, uris=(*template.uris, str(second))))

    def no_uri_san(self, name: str) -> Svid:
        """DNS SAN only (the template's DNS names, else ``localhost``): no SPIFFE ID at all."""
        template = self._template(name)
        dns = template.dns or ("localhost",)
        return self.ca.mint(dataclasses.replace(template, uris=(), dns=dns))

    def weak_key(self, name: str) -> Svid:
        """A 1024-bit RSA key, signed by the real CA."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=WEAK_RSA_BITS)
        return self.ca.mint(self._template(name), key=key)

    def revoked(self, name: str) -> Svid:
        """A valid SVID, then revoked on the CA's CRL."""
        svid = self.valid(name)
        self.ca.revoke(svid)
        return svid

    def ca_as_client(self, name: str) -> Svid:
        """A CA certificate (basicConstraints CA:TRUE, keyCertSign) of the real CA's trust domain,
        with `name`'s SPIFFE ID and clientAuth: a signing authority presented as a client."""
        return self.ca.mint(dataclasses.replace(self._template(name), is_ca=True))

    def sha1_signature(self, name: str) -> Svid:
        """Signed by the real CA with ECDSA over SHA-1 instead of SHA-256."""
        return self.ca.mint(dataclasses.replace(self._template(name), sha1=True))

    def foreign_ca(self, name: str, ca_cert: x509.Certificate, ca_key: PrivateKey) -> Svid:
        """`name`'s SPIFFE ID in this trust domain, signed by a CA the spec declares foreign
        (`tls.foreign_cas`, e.g. the team's production CA): it must be refused."""
        template = self._template(name)
        key = new_ec_key()
        cert = sign_leaf(
            template, key.public_key(), issuer_name=ca_cert.subject, signing_key=ca_key
        )
        return Svid(SpiffeId.parse(template.uris[0]), cert, (), Secret(key))
