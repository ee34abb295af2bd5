"""The trust fabric of one sandbox run: a CA, signing keys, a revocation list and the token
service serving them over HTTPS on loopback.

    fabric = await TrustFabric.start(spec)
    svid = fabric.issue("orders")              # an X.509-SVID for a workload or persona
    validator = fabric.validator()             # what a gateway uses; sees revocations at once
    ...
    await fabric.close()

The fabric's own identities — the token service's server certificate and the admin identity —
have the spec's certificate lifetime and rotate like every workload's: `rotators` holds one
in-memory `Rotator` for each, which whoever owns the event loop ticks (the sandbox's ticker, each
second) and which renews at half-life, so the old certificate still has half its life left (the
overlap). The token service then presents the new certificate on new handshakes, without a
restart; whoever keeps the admin identity elsewhere subscribes to `rotators[ADMIN_NAME]`.

Everything is created in memory per run; nothing is written to disk here.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Self

from trustproof.clock import Clock, SystemClock
from trustproof.identity import CertificateAuthority, Rotator, Svid
from trustproof.spec.model import Spec
from trustproof.tokens import (
    IssuedToken,
    KeyRing,
    RevocationList,
    TokenCheck,
    TokenIssuer,
    TokenValidator,
)
from trustproof.tokenservice.core import ADMIN_NAME, TOKEN_SERVICE_NAME, Registry, TokenService
from trustproof.tokenservice.server import TokenServer, bind_loopback, serve_token_service, url_of


@dataclass
class TrustFabric:
    registry: Registry
    clock: Clock
    ca: CertificateAuthority
    keys: KeyRing
    issuer: TokenIssuer
    revocations: RevocationList
    service: TokenService
    rotators: dict[str, Rotator]  # the fabric's own identities, in memory: token service, admin
    server: TokenServer
    certificate_ttl: timedelta
    _unfollow: list[Callable[[], None]] = field(default_factory=list, repr=False)

    @classmethod
    async def start(
        cls,
        spec: Spec,
        *,
        clock: Clock | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        sock: socket.socket | None = None,
        intermediate: bool = False,
    ) -> Self:
        """Create the CA and keys, and serve the token service on `sock` if given, else on
        `host:port` (0 = any)."""
        clock = clock or SystemClock()
        registry = Registry.from_spec(spec)
        certificate_ttl = timedelta(seconds=spec.ttl.certificate.seconds)
        ca = CertificateAuthority(spec.trust_domain, clock, intermediate=intermediate)
        keys = KeyRing(clock)
        revocations = RevocationList(clock)
        sock = sock or bind_loopback(host, port)
        try:
            issuer = TokenIssuer(url_of(sock), keys, clock, default_ttl=registry.token_ttl)
            validator = TokenValidator(issuer.issuer, keys, revocations, clock)
            service = TokenService(
                registry,
                keys=keys,
                issuer=issuer,
                validator=validator,
                revocations=revocations,
                clock=clock,
            )
            server_identity = Rotator(
                ca, clock, TOKEN_SERVICE_NAME, certificate_ttl, None, ips=[host], dns=["localhost"]
            )
            server = await serve_token_service(service, ca, server_identity.current, clock, sock)
        except BaseException:
            sock.close()
            raise
        server_identity.subscribe(server.reload_svid)
        rotators = {
            TOKEN_SERVICE_NAME: server_identity,
            ADMIN_NAME: Rotator(ca, clock, ADMIN_NAME, certificate_ttl, None),
        }
        return cls(
            registry,
            clock,
            ca,
            keys,
            issuer,
            revocations,
            service,
            rotators,
            server,
            certificate_ttl,
        )

    @property
    def admin(self) -> Svid:
        """The admin identity's current SVID (it may call the token service's admin API)."""
        return self.rotators[ADMIN_NAME].current

    @property
    def url(self) -> str:
        """The issuer URL, which is also the base of every endpoint."""
        return self.server.url

    @property
    def discovery_url(self) -> str:
        return f"{self.url}/.well-known/openid-configuration"

    def issue(self, name: str, *, ttl: timedelta | None = None) -> Svid:
        """A fresh X.509-SVID for the workload or persona `name`."""
        return self.ca.issue(name, ttl or self.certificate_ttl)

    def token_for(
        self,
        name: str,
        audience: str,
        *,
        cnf_x5t_s256: str | None = None,
        ttl: timedelta | None = None,
        iat: datetime | None = None,
        nbf: datetime | None = None,
        exp: datetime | None = None,
    ) -> IssuedToken:
        """A token for the workload or persona `name` to call the service `audience`, with the
        roles the spec gives `name` (never the caller's say), as the admin API mints one; bound to
        a certificate with `cnf_x5t_s256` (gateways require that of workload tokens)."""
        registry = self.registry
        subject = registry.spiffe_id(name)
        workload = registry.workloads.get(subject)
        roles = workload.roles if workload is not None else registry.personas.get(subject, ())
        return self.issuer.issue(
            subject,
            registry.spiffe_id(audience),
            roles=roles,
            client_id=subject,
            cnf_x5t_s256=cnf_x5t_s256,
            ttl=ttl or registry.token_ttl,
            iat=iat,
            nbf=nbf,
            exp=exp,
        )

    def validator(self) -> TokenValidator:
        """A validator for one gateway, with its own revocation mirror fed by push.

        It shares the signing keys in memory (the gateways run in this process); revocations
        reach its mirror synchronously, the moment the token service records them.
        """
        mirror = RevocationList(self.clock)
        self._unfollow.append(mirror.follow(self.revocations))
        return TokenValidator(self.issuer.issuer, self.keys, mirror, self.clock)

    def inspect(self, token: str) -> TokenCheck:
        """What the token service knows of a token (any audience), without creating a gateway
        validator (each of those is one more mirror every revocation is pushed to)."""
        return self.service.validator.inspect(token)

    async def close(self) -> None:
        while self._unfollow:
            self._unfollow.pop()()
        await self.server.close()
