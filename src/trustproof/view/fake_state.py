"""The state of a `FakeView` and the helpers every module deciding for it uses.

`FakeState` holds the view's fabric (CA, key ring, issuer, revocations, validator, the policy
engines, the verified-chain cache), the certificates and tokens it hands out, and `_answer`, the
gateway-shaped answer with its audit event. `FakeChaos` is the set of trust faults in force.
`trustproof.view.fake_http` (one HTTP attempt), `fake_chaos` and `fake_ca` (the faults) work on a
`FakeState`; `trustproof.view.fake.FakeView` adds the rest of the `SandboxView` surface on top.
Dependencies point one way: fake → fake_chaos, fake_ca, fake_http → fake_state.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from multidict import CIMultiDict

from trustproof.clock import Clock, ManualClock
from trustproof.identity import BrokenMaterial, CertificateAuthority, Svid
from trustproof.identity.chains import VerifiedChains
from trustproof.identity.foreign import ForeignAuthority, load_foreign_cas, signing_authority
from trustproof.plan import expected_matrix
from trustproof.policy.cedar import CedarPolicyEngine
from trustproof.policy.engine import PolicyEngine, StaticPolicyEngine
from trustproof.scrub import Secret
from trustproof.spec.model import Spec
from trustproof.tokens import (
    BrokenTokens,
    KeyRing,
    RevocationList,
    TokenIssuer,
    TokenTemplate,
    TokenValidator,
)
from trustproof.tokens.forged import AttackerKeys, AttackerOrigin
from trustproof.view.chaos import CrlMode, IdpFault, NetFault, WrongKeys
from trustproof.view.egress import EgressAttempt, EgressEvent, EgressKind, EgressResult
from trustproof.view.exchange import (
    BROKEN_CERT_MAKERS,
    CertKind,
    ClientCert,
    HttpAnswer,
    HttpRequest,
)
from trustproof.view.fake_db import FakeServer

ISSUER = "https://127.0.0.1:1"  # the fake token service's issuer (nothing listens there)
ATTACKER = "http://127.0.0.1:9"  # the fake attacker's key server (nothing listens; never sent to)


@dataclass
class FakeChaos:
    """The faults in force in a `FakeView`."""

    idp: IdpFault | None = None
    egress_cache_empty: bool = False
    audit_down: bool = False
    net: NetFault | None = None
    garbage_keys: tuple[str, ...] = ()  # services whose key files hold garbage
    draws: random.Random = field(default_factory=lambda: random.Random(15))  # noqa: S311
    links: dict[tuple[str, str], NetFault] = field(default_factory=dict)  # (caller, callee)
    wrong_keys: WrongKeys | None = None  # what the token service publishes instead of its keys
    wrong_key_services: tuple[str, ...] = ()  # services whose key files hold `wrong_keys`
    crl_services: tuple[str, ...] = ()  # services whose CRL file is stale or missing
    crl_mode: CrlMode | None = None

    def unanswered(self) -> bool:
        """Does the next request to the token service get no usable answer?"""
        if self.idp is not None:
            return self.idp.mode != "slow"
        if self.net is None or self.net.mode == "latency":
            return False
        return self.net.mode == "reset" or self.draws.random() < self.net.loss

    def late_ms(self) -> float:
        """How late an answered request comes."""
        if self.idp is not None and self.idp.mode == "slow":
            return self.idp.delay_s * 1000
        if self.net is not None and self.net.mode == "latency":
            return self.net.latency_s * 4000  # handshake and request, both ways
        return 1.0


@dataclass
class FakeState:
    """What a `FakeView` holds and hands out — its CA, key ring, validator, policy engines,
    certificates and tokens — and how its boundaries answer (`_answer`): everything the modules
    deciding an attempt (`fake_http`, `fake_chaos`, `fake_ca`) use, so they import this module
    and never `trustproof.view.fake` (no import circle)."""

    spec: Spec
    server: FakeServer = field(default_factory=FakeServer)
    clock: Clock = field(default_factory=lambda: ManualClock(datetime(2030, 1, 1, 12, tzinfo=UTC)))
    sent: list[HttpRequest] = field(default_factory=list)  # every request, in order
    chaos_state: FakeChaos = field(default_factory=FakeChaos)  # the trust faults in force
    # Isolation: "isolated" makes every service a namespace whose egress is closed (blocked,
    # refused) unless `leaks` says otherwise for a service: an exact attempt or a whole kind.
    backend: str = "local"
    leaks: Mapping[str, Mapping[EgressAttempt | EgressKind, EgressResult]] = field(
        default_factory=dict
    )
    egress_tried: list[tuple[str, EgressAttempt]] = field(default_factory=list)
    # What the services themselves tried and the sandbox stopped (`egress_events`).
    service_egress: tuple[EgressEvent, ...] = ()

    def __post_init__(self) -> None:
        self.ca = CertificateAuthority(self.spec.trust_domain, self.clock)
        self.keys = KeyRing(self.clock)
        self.issuer = TokenIssuer(ISSUER, self.keys, self.clock)
        self.revocations = RevocationList(self.clock)
        self.validator = TokenValidator(ISSUER, self.keys, self.revocations, self.clock)
        self.chains = VerifiedChains()  # chains verified once per bundle (identity.chains)
        # Gateways enforce the spec's Cedar policies; a service terminating mTLS itself enforces
        # its own configuration, which, well configured, allows exactly the expected matrix.
        self.engine: PolicyEngine = CedarPolicyEngine.from_spec(self.spec)
        self.own_config: PolicyEngine = StaticPolicyEngine.from_matrix(expected_matrix(self.spec))
        self._certs: dict[tuple[CertKind, str], Svid] = {}
        self._current: dict[str, Svid] = {}
        self._tokens: dict[tuple[str, str, bool], Secret[str]] = {}
        self._audit: dict[str, dict[str, Any]] = {}
        self._foreign: tuple[ForeignAuthority, ...] | None = None
        self._attacker: AttackerOrigin | None = None

    # -- endpoints ------------------------------------------------------------------------------

    def gateways(self) -> tuple[str, ...]:
        return tuple(n for n, s in self.spec.services.items() if s.ingress.gateway != "none")

    # -- certificates ---------------------------------------------------------------------------

    def cert(self, name: str) -> Svid:
        return self.broken_cert("valid", name)

    def broken_cert(self, kind: CertKind, name: str) -> Svid:
        if (kind, name) not in self._certs:
            if kind == "valid":
                svid = self.ca.issue(name, timedelta(minutes=5))
            else:
                svid = getattr(BrokenMaterial(self.ca, self.clock), BROKEN_CERT_MAKERS[kind])(name)
            self._certs[(kind, name)] = svid
        return self._certs[(kind, name)]

    def rotate(self, name: str) -> tuple[Svid, Svid]:
        retired = self._current.get(name) or self.cert(name)
        self._current[name] = self.ca.issue(name, timedelta(minutes=5))
        return retired, self._current[name]

    def revoke_cert(self, svid: Svid) -> None:
        self.ca.revoke(svid)

    async def presented_serial(self, service: str, *, as_caller: str) -> int | None:
        return (self._current.get(service) or self.cert(service)).serial

    def presented(self, cert: ClientCert) -> Svid:
        """The certificate `cert` names; a foreign CA's signs the caller's SPIFFE ID."""
        if cert.kind != "foreign-ca":
            return self.broken_cert(cert.kind, cert.name)
        key: tuple[CertKind, str] = ("foreign-ca", f"{cert.foreign_ca} {cert.name}")
        if key not in self._certs:
            authority = signing_authority(self._foreign_cas(), cert.foreign_ca)
            material = BrokenMaterial(self.ca, self.clock)
            self._certs[key] = material.foreign_ca(cert.name, *authority)
        return self._certs[key]

    def _foreign_cas(self) -> tuple[ForeignAuthority, ...]:
        if self._foreign is None:
            self._foreign = load_foreign_cas(self.spec)
        return self._foreign

    # -- tokens ---------------------------------------------------------------------------------

    def _roles(self, name: str) -> tuple[str, ...]:
        who = self.spec.personas.get(name) or self.spec.services.get(name)
        return tuple(who.roles) if who is not None else ()

    def token(
        self,
        caller: str,
        audience: str,
        *,
        bound: bool,
        fresh: bool = False,
        iat: datetime | None = None,
        nbf: datetime | None = None,
        exp: datetime | None = None,
    ) -> Secret[str]:
        key = (caller, audience, bound)
        timed = iat is not None or nbf is not None or exp is not None
        if fresh or timed or key not in self._tokens:
            issued = self.issuer.issue(
                self.spec.spiffe_id(caller),
                self.spec.spiffe_id(audience),
                roles=self._roles(caller),
                client_id=self.spec.spiffe_id(caller),
                cnf_x5t_s256=self.cert(caller).x5t_s256 if bound else None,
                iat=iat,
                nbf=nbf,
                exp=exp,
            )
            if fresh or timed:
                return issued.token
            self._tokens[key] = issued.token
        return self._tokens[key]

    def token_template(self, caller: str, audience: str, *, bound: bool) -> TokenTemplate:
        return BrokenTokens(self.issuer, self.keys, self.clock).template(
            self.spec.spiffe_id(caller),
            self.spec.spiffe_id(audience),
            roles=self._roles(caller),
            cnf_x5t_s256=self.cert(caller).x5t_s256 if bound else None,
        )

    async def revoke_token(self, token: Secret[str], *, as_caller: str) -> int:
        check = self.validator.inspect(token.reveal())
        if not check.claims:
            return 200  # RFC 7009: unknown tokens are fine
        if check.claims.get("client_id") != self.spec.spiffe_id(as_caller):
            return 403
        expires = datetime.fromtimestamp(int(check.claims["exp"]), UTC)
        self.revocations.revoke(str(check.claims["jti"]), expires)
        return 200

    def token_kid(self, token: Secret[str]) -> str:
        return str(jwt.get_unverified_header(token.reveal()).get("kid", ""))

    async def attacker_origin(self) -> AttackerOrigin:
        if self._attacker is None:
            keys = AttackerKeys.generate(self.clock)
            self._attacker = AttackerOrigin(keys, f"{ATTACKER}/jwks.json", f"{ATTACKER}/cert.pem")
        return self._attacker

    def attacker_document(self, url: str) -> bytes | None:
        """What a fake server fetching `url` gets: the attacker's documents, nothing else."""
        origin = self._attacker
        if origin is None:
            return None
        documents = {
            origin.jwks_url: origin.keys.jwks_json,
            origin.x5u_url: origin.keys.certificate_pem,
        }
        return documents.get(url)

    def _answer(
        self, request: HttpRequest, status: int, stage: str, reason: str, principal: str = ""
    ) -> HttpAnswer:
        request_id = f"fake-{len(self._audit) + 1}"
        event = {"request_id": request_id, "stage": stage, "reason": reason}
        event["time"] = self.clock.now().astimezone(UTC).isoformat()  # as a gateway stamps it
        self._audit[request_id] = {**event, "principal": principal}
        headers = CIMultiDict({"X-Trustproof-Request-Id": request_id})
        if status == 200:
            headers["X-Served-By"] = request.service
            return HttpAnswer(200, headers, b"{}", f"fake://{request.service}")
        headers["X-Trustproof-Decision"] = "deny"
        body = f'{{"stage": "{stage}", "reason": "{reason}"}}'.encode()
        return HttpAnswer(status, headers, body, f"fake://{request.service}")
