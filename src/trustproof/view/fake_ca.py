"""The fake's certificate-authority faults (`trustproof.chaos.faults_ca`): what `FakeView` does
while a CA experiment rotates its root, retires one, or revokes an intermediate, and how a
`FakeServer` with `chaos_flaws` gets it wrong.

Well configured, the fake behaves as the live sandbox does: an expired certificate is refused; a
root added to the bundle is trusted before it issues anything; once the services are reissued
from the newest root the callers present its certificates; a retired root's certificates and a
revoked intermediate's are refused at the handshake. The flaws: ``accepts-expired-cert``,
``keeps-retired-root``, ``ignores-intermediate-revocation`` (`cert_flaw_accepts`). Split from
`trustproof.view.fake_chaos`, which keeps the token, policy, audit, network and third-party faults.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

from cryptography import x509

from trustproof.clock import ManualClock
from trustproof.identity import Svid
from trustproof.view.chaos import BundleChange, TemporaryCa
from trustproof.view.fake_state import FakeState


def cert_flaw_accepts(view: FakeState, peer: Svid, reason: str) -> bool:
    """Does a flawed fake server accept `peer`, which verification refused for `reason`?"""
    flaws = view.server.chaos_flaws
    if reason == "expired" and "accepts-expired-cert" in flaws:
        return True
    withdrawn = view.ca.withdrawn(peer.serial)
    if withdrawn == "intermediate" and "ignores-intermediate-revocation" in flaws:
        return True
    return withdrawn == "root" and "keeps-retired-root" in flaws


def use_cert(view: FakeState, name: str, svid: Svid | None) -> None:
    if svid is None:
        view._certs.pop(("valid", name), None)
    else:
        view._certs[("valid", name)] = svid
    for key in [key for key in view._tokens if key[0] == name]:
        del view._tokens[key]


def short_lived_cert(view: FakeState, name: str, ttl: timedelta) -> Svid:
    end = view.clock.now() + ttl
    if end.microsecond:
        end = end.replace(microsecond=0) + timedelta(seconds=1)
    return view.ca.issue(name, ttl, not_after=end)


async def wait_until(view: FakeState, when: datetime) -> None:
    clock = view.clock
    if not isinstance(clock, ManualClock):
        raise TypeError("the fake waits only on its manual clock")
    now = clock.now()
    if now <= when:
        clock.advance(when - now + timedelta(milliseconds=1))


@asynccontextmanager
async def hold_cert(view: FakeState, name: str, svid: Svid) -> AsyncIterator[None]:
    saved = view._certs.get(("valid", name))
    use_cert(view, name, svid)
    try:
        yield
    finally:
        use_cert(view, name, saved)


def _bundle(view: FakeState) -> BundleChange:
    return BundleChange(tuple(c.serial_number for c in view.ca.bundle), ())


@asynccontextmanager
async def ca_rotation(view: FakeState) -> AsyncIterator[None]:
    try:
        yield
    finally:
        view.ca.activate_root()
        view._certs = {k: v for k, v in view._certs.items() if k[0] != "valid"}
        view._current.clear()
        view._tokens.clear()


async def add_root(view: FakeState) -> BundleChange:
    view.ca.rotate_root(activate=False)
    return _bundle(view)


async def issue_from_newest_root(view: FakeState) -> tuple[str, ...]:
    """The services reissued, and the callers the view presents (as the live view does)."""
    view.ca.activate_root()
    names = tuple(view.spec.services)
    for name in names:
        view._current[name] = view.ca.issue(name, timedelta(minutes=5))
    view._certs = {k: v for k, v in view._certs.items() if k[0] != "valid"}
    view._tokens.clear()
    return names


async def retire_root(view: FakeState, serial: int) -> BundleChange:
    root = next(c for c in view.ca.bundle if c.serial_number == serial)
    view.ca.retire_root(root)
    return _bundle(view)


@asynccontextmanager
async def temporary_intermediate(view: FakeState) -> AsyncIterator[TemporaryCa]:
    root, intermediate = view.ca.add_intermediate_root()
    try:
        yield TemporaryCa(
            root.serial_number, intermediate.serial_number, intermediate.subject.rfc4514_string()
        )
    finally:
        view.ca.retire_root(root)


def _intermediate(view: FakeState, ca: TemporaryCa) -> x509.Certificate:
    return next(c for c in view.ca.intermediates if c.serial_number == ca.serial)


def issue_under(view: FakeState, ca: TemporaryCa, name: str) -> Svid:
    return view.ca.issue_under(_intermediate(view, ca), name, timedelta(minutes=5))


async def revoke_intermediate(view: FakeState, ca: TemporaryCa) -> BundleChange:
    view.ca.revoke_intermediate(_intermediate(view, ca))
    return _bundle(view)
