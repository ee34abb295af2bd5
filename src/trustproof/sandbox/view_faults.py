"""The trust-fault half of `LiveView` (`trustproof.sandbox.view`): what the chaos experiments
break through the view and read back — the token service down or slow, the token path and the
service links degraded, a signing key compromised, clocks skewed, policies corrupted on reload,
the audit sink down, wrong or garbage keys, stale or missing CRLs, CA roots rotated and retired, a
temporary intermediate revoked, certificates left to expire. Each method hands its work to
`view_chaos`, `view_thirdparty` or `view_ca` and keeps the view's caches (certificates, TLS
contexts, tokens) true to what changed.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager, asynccontextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import aiohttp

from trustproof.identity import Svid
from trustproof.policy.engine import PolicyEngine
from trustproof.sandbox import view_ca, view_chaos, view_thirdparty
from trustproof.scrub import Secret
from trustproof.tokens.revocation_time import accepted_at
from trustproof.view import CertKind, ClientCert, TlsOffer
from trustproof.view.chaos import (
    BundleChange,
    CrlMode,
    IdpFault,
    NetFault,
    NetPath,
    PolicyReload,
    TemporaryCa,
    TokenFetch,
    WrongKeys,
    rss_kib,
)

if TYPE_CHECKING:
    from trustproof.fabric import TrustFabric
    from trustproof.sandbox.controller import Sandbox
    from trustproof.sandbox.view_egress import EgressClient
    from trustproof.spec.model import Spec


class TrustFaults:
    """Mixed into `LiveView`, whose fields and methods these are (declared here for the type
    checker only)."""

    sandbox: Sandbox
    fresh_session: aiohttp.ClientSession
    pooled: aiohttp.ClientSession
    _certs: dict[tuple[CertKind, str], Svid]
    _contexts: dict[tuple[ClientCert | None, TlsOffer], ssl.SSLContext]
    _tokens: dict[tuple[str, str, bool], Secret[str]]
    _egress: EgressClient | None

    @property
    def spec(self) -> Spec:
        raise NotImplementedError

    @property
    def fabric(self) -> TrustFabric:
        raise NotImplementedError

    def _context(self, cert: ClientCert | None, tls: TlsOffer) -> ssl.SSLContext:
        raise NotImplementedError

    # -- trust faults (`trustproof.sandbox.view_chaos`) -----------------------------------------

    def token_service_fault(self, fault: IdpFault) -> AbstractAsyncContextManager[None]:
        return view_chaos.token_service_fault(self.fabric, fault)

    def token_path_fault(self, fault: NetFault) -> AbstractAsyncContextManager[None]:
        return view_chaos.token_path_fault(self.fabric, fault)

    async def fetch_token(self, caller: str, audience: str) -> TokenFetch:
        context = self._context(ClientCert(caller), "modern")
        form = {"grant_type": "client_credentials", "audience": self.spec.spiffe_id(audience)}
        return await view_chaos.fetch_token(
            self.fresh_session, f"{self.fabric.url}/token", form, context
        )

    def drop_cached_tokens(self) -> int:
        return view_chaos.drop_cached_tokens(self.sandbox)

    def compromise_signing_key(self) -> tuple[str, str]:
        old, new = self.fabric.keys.compromise()
        self._tokens.clear()  # tokens the view cached were signed by the removed key
        return old, new.kid

    def skew_clock(self, service: str, offset: timedelta) -> AbstractContextManager[None]:
        return view_chaos.skew_clock(self.sandbox, service, offset)

    def skew_process_clock(
        self, service: str, offset: timedelta
    ) -> AbstractAsyncContextManager[None]:
        return view_chaos.skew_process_clock(self.sandbox, service, offset)

    def jwks_garbage(self, services: tuple[str, ...]) -> AbstractAsyncContextManager[None]:
        return view_chaos.jwks_garbage(self.sandbox, services)

    async def revoke_tokens(
        self, tokens: Sequence[Secret[str]], *, as_caller: str, concurrency: int = 16
    ) -> tuple[int, ...]:
        context = self._context(ClientCert(as_caller), "modern")
        url = f"{self.fabric.url}/revoke"
        return await view_chaos.revoke_all(self.pooled, url, tokens, context, concurrency)

    def hot_reload(self, replacement: str) -> AbstractAsyncContextManager[PolicyReload]:
        return view_chaos.hot_reload(self.sandbox, replacement)

    def policy_with(self, extra: str) -> PolicyEngine:
        return view_chaos.policy_with(self.sandbox, extra)

    def audit_sink_fault(self) -> AbstractContextManager[None]:
        return view_chaos.audit_sink_fault(self.sandbox)

    def memory_kib(self) -> int:
        return rss_kib()

    # -- network faults on service-to-service links (`trustproof.sandbox.view_chaos`) ----------

    def service_path_fault(
        self, links: tuple[tuple[str, str], ...], fault: NetFault
    ) -> AbstractAsyncContextManager[NetPath]:
        return view_chaos.service_path_fault(self.sandbox, links, fault)

    # -- third-party trust faults (`trustproof.sandbox.view_thirdparty`) ------------------------

    def jwks_wrong_keys(
        self, services: tuple[str, ...], keys: WrongKeys
    ) -> AbstractAsyncContextManager[None]:
        return view_thirdparty.jwks_wrong_keys(self.sandbox, services, keys)

    def crl_fault(
        self, services: tuple[str, ...], mode: CrlMode
    ) -> AbstractAsyncContextManager[None]:
        return view_thirdparty.crl_fault(self.sandbox, services, mode)

    # -- certificate-authority faults: `trustproof.sandbox.view_ca` -----------------------------

    def use_cert(self, name: str, svid: Svid | None) -> None:
        if svid is None:
            self._certs.pop(("valid", name), None)
        else:
            self._certs[("valid", name)] = svid
        for key in [key for key in self._contexts if key[0] == ClientCert(name)]:
            del self._contexts[key]
        for token_key in [key for key in self._tokens if key[0] == name]:
            del self._tokens[token_key]
        if self._egress is not None:
            self._egress._contexts.pop(name, None)

    def _renew_identities(self) -> None:
        """The bundle changed, or every SVID was reissued: fresh contexts, certificates, tokens."""
        self._certs = {key: svid for key, svid in self._certs.items() if key[0] != "valid"}
        self._contexts.clear()
        self._tokens.clear()
        if self._egress is not None:
            self._egress._contexts.clear()

    def short_lived_cert(self, name: str, ttl: timedelta) -> Svid:
        return view_ca.short_lived_cert(self.sandbox, name, ttl)

    async def wait_until(self, when: datetime) -> None:
        await view_ca.wait_until(self.sandbox, when)

    @asynccontextmanager
    async def hold_cert(self, name: str, svid: Svid) -> AsyncIterator[None]:
        saved = self._certs.get(("valid", name))
        self.use_cert(name, svid)
        try:
            with view_ca.held_by_proxies(self.sandbox, name, svid):
                yield
        finally:
            self.use_cert(name, saved)

    def root_serials(self) -> tuple[int, ...]:
        return tuple(root.serial_number for root in self.fabric.ca.bundle)

    @asynccontextmanager
    async def ca_rotation(self) -> AsyncIterator[None]:
        try:
            async with view_ca.ca_rotation(self.sandbox):
                yield
        finally:
            self._renew_identities()

    async def add_root(self) -> BundleChange:
        change = await view_ca.add_root(self.sandbox)
        self._contexts.clear()  # the same certificates, trusting the new root too
        if self._egress is not None:
            self._egress._contexts.clear()
        return change

    def newest_root_cert(self, name: str) -> Svid:
        ca = self.fabric.ca
        return ca.issue_under(ca.bundle[-1], name, self.fabric.certificate_ttl)

    async def issue_from_newest_root(self) -> tuple[str, ...]:
        names = await view_ca.issue_from_newest_root(self.sandbox)
        self._renew_identities()
        return names

    async def retire_root(self, serial: int) -> BundleChange:
        change = await view_ca.retire_root(self.sandbox, serial)
        self._contexts.clear()
        if self._egress is not None:
            self._egress._contexts.clear()
        return change

    @asynccontextmanager
    async def temporary_intermediate(self) -> AsyncIterator[TemporaryCa]:
        async with view_ca.temporary_intermediate(self.sandbox) as ca:
            yield ca  # the servers' certificates do not change: the view's contexts hold

    def issue_under(self, ca: TemporaryCa, name: str) -> Svid:
        return view_ca.issue_under(self.sandbox, ca, name)

    async def revoke_intermediate(self, ca: TemporaryCa) -> BundleChange:
        return await view_ca.revoke_intermediate(self.sandbox, ca)

    def revocation_time(self, token: Secret[str]) -> datetime | None:
        return accepted_at(self.fabric.revocations, token)
