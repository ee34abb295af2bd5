"""``jwks-wrong-keys`` and ``crl-fault`` against the in-memory `FakeView`: each passes on servers
that behave and fails — naming the service and what went wrong — on a fake that gets it wrong
(`FakeServer.chaos_flaws`)."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from trustproof.chaos.faults_thirdparty import wrong_keys
from trustproof.chaos.scenario import ScenarioEnv, ScenarioResult
from trustproof.spec.chaos import Experiment, chaos_problems
from trustproof.spec.load import load_spec
from trustproof.spec.values import Name
from trustproof.suite import chaos_audit
from trustproof.suite.scenarios import run_experiment_safely
from trustproof.tokens.keys import SigningKey
from trustproof.view.chaos import ChaosFlaw
from trustproof.view.fake import FakeView
from trustproof.view.fake_db import FakeServer

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
SHOP = load_spec(EXAMPLES / "shop" / "trustproof.yaml")
PYJWT = load_spec(EXAMPLES / "pyjwt-mtls" / "trustproof.yaml")
NGINX = load_spec(EXAMPLES / "nginx-mtls" / "trustproof.yaml")
WRONG = Experiment(Name("w"), "jwks-wrong-keys")


def run(view: FakeView, experiment: Experiment) -> ScenarioResult:
    sid = f"chaos.{experiment.fault}"
    return asyncio.run(run_experiment_safely(sid, experiment, ScenarioEnv(view)))


def flawed(spec: object, *flaws: ChaosFlaw) -> FakeView:
    return FakeView(spec, FakeServer(chaos_flaws=frozenset(flaws)))  # type: ignore[arg-type]


def timeline(result: ScenarioResult) -> str:
    return "\n".join(text for _, text in result.timeline)


def test_the_wrong_key_set_is_well_formed_and_holds_no_key_of_the_issuer() -> None:
    keys = wrong_keys("kid-1")
    document = json.loads(keys.jwks)
    assert [k["kty"] for k in document["keys"]] == ["EC", "EC", "RSA"]
    assert keys.kids[0] == "kid-1"
    assert len(set(keys.kids)) == 3
    for jwk in document["keys"][:2]:  # 32-byte coordinates, base64url without padding
        assert len(jwk["x"]) == len(jwk["y"]) == 43
    loaded = [serialization.load_pem_public_key(pem) for pem in keys.pems]
    assert len(loaded) == 3
    issuer = SigningKey.generate(FakeView(SHOP).clock)
    assert issuer.public_jwk()["x"] not in {k.get("x") for k in document["keys"]}
    assert "PRIVATE" not in keys.jwks.decode() + b"".join(keys.pems).decode()


def test_wrong_keys_leave_a_service_reading_them_closed() -> None:
    result = run(FakeView(PYJWT), WRONG)
    assert result.verdict == "pass", result.summary
    assert result.summary.startswith(
        "w: the token service published keys it does not hold; 1 service(s) refused every token "
        "no issuer key signed; refused the issuer's valid tokens (fail closed): inventory; "
        "recovered in "
    )
    text = timeline(result)
    assert "a kid the JWKS lacks, the signer's key in a jwk header: HTTP 401" in text
    assert "FAULT: the token service publishes 3 keys it does not hold" in text
    assert "ROLLBACK" in text
    assert result.figures["accepted_again_ms.inventory"] >= 0


def test_a_service_skipping_verification_for_an_unknown_kid_fails_wrong_keys() -> None:
    result = run(flawed(PYJWT, "wrong-keys-accepted"), WRONG)
    assert result.verdict == "fail"
    assert result.summary == (
        "w: inventory accepted a token with a kid the JWKS lacks (signed by a key nobody "
        "published) while its JWKS held wrong keys: it fails open; inventory accepted a token "
        "with a kid the JWKS lacks, the signer's key in a jwk header while its JWKS held wrong "
        "keys: it fails open"
    )


def test_wrong_keys_published_leave_the_gateways_judging_as_before() -> None:
    result = run(FakeView(SHOP), WRONG)
    assert result.verdict == "pass", result.summary
    assert result.summary.startswith(
        "w: the token service published keys it does not hold; 6 gateway cells held (keys in "
        "memory); recovered in"
    )
    assert result.figures["over_permissions"] == 0


def test_a_stale_crl_refuses_every_certificate_and_a_missing_one_keeps_the_last() -> None:
    result = run(FakeView(NGINX), Experiment(Name("c"), "crl-fault"))
    assert result.verdict == "pass", result.summary
    assert result.summary.startswith(
        "c: 1 service(s) kept the revoked certificate refused; edge kept its last CRL when the "
        "file went missing; edge refused every certificate on the stale CRL (fail closed); "
    )
    text = timeline(result)
    assert "FAULT: the CRL file of edge past its nextUpdate" in text
    assert "FAULT: the CRL file of edge removed" in text
    assert "after (missing): edge accepts a valid certificate" in text
    assert result.figures["stale_refused_after_ms.edge"] >= 0


def test_a_service_ignoring_a_stale_crl_fails_the_crl_fault() -> None:
    stale = Experiment(Name("c"), "crl-fault", mode="stale")
    result = run(flawed(PYJWT, "stale-crl-accepted"), stale)
    assert result.verdict == "fail"
    assert result.summary == (
        "c: inventory accepted a revoked certificate with its CRL stale: revocation no longer "
        "checked"
    )
    # the missing-file mode alone does not fool it
    assert run(flawed(PYJWT, "stale-crl-accepted"), Experiment(Name("c"), "crl-fault",
                                                               mode="missing")).ok  # fmt: skip


def test_a_service_dropping_the_crl_check_without_its_file_fails_the_crl_fault() -> None:
    result = run(flawed(NGINX, "missing-crl-accepted"), Experiment(Name("c"), "crl-fault"))
    assert result.verdict == "fail"
    assert result.summary == (
        "c: edge accepted a revoked certificate with its CRL missing: revocation no longer checked"
    )


def test_the_crl_fault_skips_where_the_gateways_hold_revocations() -> None:
    result = run(FakeView(SHOP), Experiment(Name("c"), "crl-fault"))
    assert result.verdict == "skip"
    assert "the gateways hold revocations in memory" in result.summary


def test_the_crl_fault_takes_a_mode_and_wrong_keys_none() -> None:
    chaos = SHOP.chaos.__class__(
        True,
        (
            Experiment(Name("a"), "crl-fault", mode="stale"),
            Experiment(Name("b"), "crl-fault", mode="slow"),
            Experiment(Name("c"), "jwks-wrong-keys", mode="missing"),
        ),
    )
    problems = [message for _, message, _ in chaos_problems(chaos, {"orders": True})]
    assert problems == ["crl-fault has no mode slow", "jwks-wrong-keys takes no mode"]


class _Log:
    """Stands in for the sandbox: what `chaos_audit` hands to its audit log."""

    def __init__(self) -> None:
        self.records: list[tuple[str, dict[str, object]]] = []

    def audit_event(self, kind: str, **fields: object) -> None:
        self.records.append((kind, fields))


def test_each_chaos_step_and_the_verdict_go_to_the_audit_log_as_they_happen() -> None:
    log = _Log()
    sid = "chaos.jwks-wrong-keys"
    steps = chaos_audit.steps_to(log, sid)  # type: ignore[arg-type]
    view = flawed(PYJWT, "wrong-keys-accepted")
    result = asyncio.run(run_experiment_safely(sid, WRONG, ScenarioEnv(view), on_event=steps))
    chaos_audit.record_result(log, result)  # type: ignore[arg-type]
    assert {kind for kind, _ in log.records} == {"chaos"}
    texts = [str(fields["step"]) for _, fields in log.records[:-1]]
    assert texts == [text for _, text in result.timeline]  # every step, in order
    assert any(text.startswith("FAULT: the token service publishes") for text in texts)
    assert any(text.startswith("ROLLBACK") for text in texts)
    assert any(text.startswith("UNEXPECTED: inventory accepted a token") for text in texts)
    assert all(fields["case"] == sid for _, fields in log.records)
    assert log.records[-1][1] == {
        "case": sid,
        "verdict": "fail",
        "ok": False,
        "summary": result.summary,
    }


def test_the_stale_crl_lists_what_is_revoked_and_is_past_its_next_update() -> None:
    view = FakeView(PYJWT)
    revoked = view.broken_cert("revoked", "alice")
    now = view.clock.now()
    crls = [
        x509.load_pem_x509_crl(b"-----BEGIN X509 CRL-----" + block)
        for block in view.ca.stale_crl_pem(timedelta(hours=2)).split(b"-----BEGIN X509 CRL-----")
        if block.strip()
    ]
    assert crls
    for crl in crls:
        assert crl.next_update_utc is not None
        assert crl.next_update_utc < now
        assert crl.last_update_utc < crl.next_update_utc
    assert any(crl.get_revoked_certificate_by_serial_number(revoked.serial) for crl in crls)
    # the CA's own CRL is untouched: still current
    current = x509.load_pem_x509_crl(view.ca.crl_pem())
    assert current.next_update_utc is not None
    assert current.next_update_utc > now
