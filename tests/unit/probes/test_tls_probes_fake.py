"""The TLS probes of issue 12 against the in-memory `FakeView`: for each, a server it fools (one
check switched off: the verdict is an over-permission on every boundary) and the well-configured
one (a pass). The shop has three service boundaries; the probes use one allowed cell on each.

A server that accepts a broken certificate but checks that the token is bound to the caller's
valid one would still refuse one stage late: the fooled servers here also ignore the binding
(``cnf-mismatch``), so that the certificate is the only thing that decides.
"""

from __future__ import annotations

import asyncio
import shutil
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from trustproof.identity.material import common_name, make_ca_certificate, new_ec_key
from trustproof.probes.model import Verdict, judge
from trustproof.probes.registry import generate, probe_for
from trustproof.probes.tls import judge_advertised
from trustproof.spec.load import load_spec
from trustproof.spec.model import Spec
from trustproof.view import AdvertisedCas, CaNames, TransportFailure
from trustproof.view.fake import FakeServer, FakeView

SHOP_DIR = Path(__file__).resolve().parents[3] / "examples" / "shop"
SHOP = load_spec(SHOP_DIR / "trustproof.yaml")
BINDING = frozenset({"cnf-mismatch"})


def run(spec: Spec, server: FakeServer, probe: str) -> Counter[tuple[str, Verdict]]:
    view = FakeView(spec, server)
    cases = [case for case in generate(spec) if case.probe == probe]
    assert cases, f"{probe} generated no case"

    async def main() -> Counter[tuple[str, Verdict]]:
        found: Counter[tuple[str, Verdict]] = Counter()
        for case in cases:
            found[(case.variant, judge(case, await probe_for(case).run(case, view)))] += 1
        return found

    return asyncio.run(main())


# probe -> the verify_svid reason a fooled server ignores
CERT_PROBES = {
    "tls.revoked-cert": "revoked",
    "tls.wrong-eku": "missing-client-auth",
    "tls.ca-as-client": "ca-certificate",
    "tls.weak-key": "weak-key",
    "tls.sha1-signature": "weak-signature",
    "tls.no-uri-san": "no-spiffe-id",
}


@pytest.mark.parametrize(("probe", "reason"), sorted(CERT_PROBES.items()))
def test_a_server_ignoring_the_defect_is_caught_and_a_correct_one_passes(
    probe: str, reason: str
) -> None:
    fooled = FakeServer(ignore_cert=frozenset({reason}), ignore_token=BINDING)
    assert run(SHOP, fooled, probe) == Counter({("", "over-permission"): 3})
    assert run(SHOP, FakeServer(), probe) == Counter({("", "pass"): 3})


def test_each_cert_probe_is_caught_only_by_its_own_defect() -> None:
    """Ignoring another defect does not let this probe's certificate in: one thing differs."""
    for probe, reason in CERT_PROBES.items():
        others = frozenset(CERT_PROBES.values()) - {reason}
        server = FakeServer(ignore_cert=others, ignore_token=BINDING)
        assert run(SHOP, server, probe) == Counter({("", "pass"): 3}), probe


def test_legacy_versions_are_one_case_each() -> None:
    only_tls10 = FakeServer(accept_tls_versions=frozenset({"tls1.0"}))
    assert run(SHOP, only_tls10, "tls.legacy-version") == Counter(
        {("tls1.0", "over-permission"): 3, ("tls1.1", "pass"): 3}
    )
    assert run(SHOP, FakeServer(), "tls.legacy-version") == Counter(
        {("tls1.0", "pass"): 3, ("tls1.1", "pass"): 3}
    )


def test_weak_ciphers() -> None:
    fooled = FakeServer(accept_weak_ciphers=True)
    assert run(SHOP, fooled, "tls.weak-ciphers") == Counter({("", "over-permission"): 3})
    assert run(SHOP, FakeServer(), "tls.weak-ciphers") == Counter({("", "pass"): 3})


def test_an_extra_advertised_ca_is_an_over_permission_naming_it() -> None:
    fooled = FakeServer(advertise_unrelated_ca=True)
    assert run(SHOP, fooled, "tls.advertised-cas") == Counter({("", "over-permission"): 3})
    assert run(SHOP, FakeServer(), "tls.advertised-cas") == Counter({("", "pass"): 3})


def with_foreign_cas(tmp_path: Path) -> Spec:
    """The shop plus two foreign CAs: ``prod.pem`` with its key, ``staging.pem`` without."""
    shop = tmp_path / "shop"
    shutil.copytree(SHOP_DIR, shop, ignore=shutil.ignore_patterns("__pycache__", ".trustproof"))
    now = datetime.now(UTC)
    for name, with_key in (("prod", True), ("staging", False)):
        key = new_ec_key()
        cert = make_ca_certificate(
            common_name(f"{name} root", organization="Team"),
            key,
            not_before=now - timedelta(hours=1),
            not_after=now + timedelta(days=1),
            path_length=0,
        )
        (shop / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        if with_key:
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            (shop / f"{name}.key").write_bytes(pem)
    text = (SHOP_DIR / "trustproof.yaml").read_text()
    text += "\ntls:\n  foreign_cas:\n    - {cert: prod.pem, key: prod.key}\n"
    text += "    - {cert: staging.pem}\n"
    spec_file = shop / "trustproof.yaml"
    spec_file.write_text(text)
    return load_spec(spec_file)


def test_a_foreign_ca_with_a_key_is_probed_with_a_certificate_it_signs(tmp_path: Path) -> None:
    spec = with_foreign_cas(tmp_path)
    fooled = FakeServer(trust_foreign_cas=True, ignore_token=BINDING)
    assert run(spec, fooled, "tls.foreign-ca") == Counter({("prod.pem", "over-permission"): 3})
    assert run(spec, FakeServer(), "tls.foreign-ca") == Counter({("prod.pem", "pass"): 3})


def test_a_foreign_ca_without_a_key_is_caught_by_the_advertised_names(tmp_path: Path) -> None:
    spec = with_foreign_cas(tmp_path)
    view = FakeView(spec, FakeServer(trust_foreign_cas=True))
    names = view.ca_names()
    assert sorted(names.foreign.values()) == ["foreign CA prod.pem", "foreign CA staging.pem"]
    result = judge_advertised(asyncio.run(view.advertised_cas("orders")), names)
    assert (result.outcome, result.reason) == ("allowed", "trusts-foreign-ca")
    assert "foreign CA staging.pem" in result.evidence.detail
    assert run(spec, FakeServer(), "tls.advertised-cas") == Counter({("", "pass"): 3})


OWN = CaNames({b"own": "sandbox CA CN=root"}, {b"prod": "foreign CA prod.pem"})


def test_advertised_names_judged_without_sockets() -> None:
    only_own = AdvertisedCas(("CN=root",), (b"own",), True, "https://x")
    assert judge_advertised(only_own, OWN).reason == "only-sandbox-cas"
    none = AdvertisedCas((), (), True, "https://x")
    assert (judge_advertised(none, OWN).outcome, judge_advertised(none, OWN).reason) == (
        "denied_tls",
        "no-ca-names",
    )
    other = AdvertisedCas(("CN=root", "CN=Acme"), (b"own", b"acme"), True, "https://x")
    found = judge_advertised(other, OWN)
    assert (found.outcome, found.reason) == ("allowed", "trusts-other-ca")
    assert "unrelated CA CN=Acme" in found.evidence.detail


def test_a_scan_that_reads_nothing_is_never_a_pass() -> None:
    """TLS 1.3 only (the CertificateRequest is encrypted), no CertificateRequest at all, or no
    answer: inconclusive or unreachable, never a refusal."""
    tls13 = TransportFailure("handshake-failed", "alert protocol_version", "https://x")
    assert judge_advertised(tls13, OWN).outcome == "inconclusive"
    unasked = AdvertisedCas((), (), False, "https://x")
    assert judge_advertised(unasked, OWN).outcome == "inconclusive"
    down = TransportFailure("connection-refused", "refused", "https://x")
    assert judge_advertised(down, OWN).outcome == "unreachable"
    view = FakeView(SHOP, FakeServer(speaks_tls12=False))
    assert run(SHOP, FakeServer(speaks_tls12=False), "tls.advertised-cas") != Counter(
        {("", "pass"): 3}
    )
    assert view.ca_names().foreign == {}
