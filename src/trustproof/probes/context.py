"""What probes share during one suite run: the running sandbox, and caches of the identities,
TLS contexts and tokens they present (building a TLS context costs about a millisecond; a suite
makes thousands of attempts with a few dozen identities)."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp

from trustproof.fabric import TrustFabric
from trustproof.identity import BrokenMaterial, Svid
from trustproof.sandbox.controller import Sandbox
from trustproof.tls import client_context
from trustproof.tokens import BrokenTokens


@dataclass
class ProbeContext:
    sandbox: Sandbox
    session: aiohttp.ClientSession  # a fresh connection (and TLS handshake) per attempt
    pooled: aiohttp.ClientSession  # kept-alive connections, one pool per presented identity
    _certs: dict[str, Svid] = field(default_factory=dict)
    _contexts: dict[str, ssl.SSLContext] = field(default_factory=dict)
    _tokens: dict[tuple[str, str, str | None], str] = field(default_factory=dict, repr=False)

    @classmethod
    def open(cls, sandbox: Sandbox) -> ProbeContext:
        fresh = aiohttp.TCPConnector(force_close=True, limit=0)
        # aiohttp keys pooled connections by TLS context, and contexts are cached per identity:
        # a connection is only ever reused by the identity that made it. At most 3 per identity
        # and boundary: a few kept-alive connections beat a handshake per concurrent case
        # (measured on the shop: 255 -> 370 cases/s).
        pooled = aiohttp.TCPConnector(limit=64, limit_per_host=3, keepalive_timeout=30)
        return cls(
            sandbox,
            aiohttp.ClientSession(connector=fresh, auto_decompress=False),
            aiohttp.ClientSession(connector=pooled, auto_decompress=False),
        )

    async def close(self) -> None:
        await self.session.close()
        await self.pooled.close()

    @property
    def fabric(self) -> TrustFabric:
        fabric = self.sandbox.fabric
        if fabric is None:
            raise RuntimeError("the sandbox is not running")
        return fabric

    def cert(self, name: str) -> Svid:
        """One valid X.509-SVID per identity for the whole run."""
        if name not in self._certs:
            self._certs[name] = self.fabric.issue(name)
        return self._certs[name]

    def context(self, key: str, make: Callable[[], Svid | None]) -> ssl.SSLContext:
        """A client TLS context trusting the sandbox CA and presenting `make()`, cached by key."""
        if key not in self._contexts:
            self._contexts[key] = client_context(self.fabric.ca.bundle_pem(), make())
        return self._contexts[key]

    def identity_context(self, name: str | None) -> ssl.SSLContext:
        if name is None:
            return self.context("anonymous", lambda: None)
        return self.context(f"valid:{name}", lambda: self.cert(name))

    def token(self, caller: str, audience: str, *, bound: bool) -> str:
        """A valid token for `caller` to call `audience`, bound to its certificate if asked."""
        thumb = self.cert(caller).x5t_s256 if bound else None
        key = (caller, audience, thumb)
        if key not in self._tokens:
            self._tokens[key] = self.sandbox.token(caller, audience, cnf_x5t_s256=thumb)
        return self._tokens[key]

    def broken_material(self) -> BrokenMaterial:
        return BrokenMaterial(self.fabric.ca, self.sandbox.clock)

    def broken_tokens(self) -> BrokenTokens:
        return BrokenTokens(self.fabric.issuer, self.fabric.keys, self.sandbox.clock)
