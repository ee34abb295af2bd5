"""Alert rules (which alerts a run raises, deduplicated and capped) and sinks (what each sends),
without sockets: HTTP goes to a fake `post`."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import pytest

from trustproof.alerts.rules import RunFacts, evaluate
from trustproof.alerts.sinks import SIGNATURE_HEADER, TIMESTAMP_HEADER, dispatch, github_line
from trustproof.probes.model import Evidence
from trustproof.results import AlertRecord, CaseRecord, Results, ScenarioRecord
from trustproof.spec.auditing import AlertRule, Alerts, AlertSinkSpec
from trustproof.spec.values import Count, Duration, EnvName

CALLERS = frozenset({"storefront", "orders", "alice", "bob"})


def case(verdict: str, probe: str = "authz.outside-matrix", caller: str = "bob") -> CaseRecord:
    return CaseRecord(
        id=f"{probe} | storefront | {caller} | POST /checkout",
        probe=probe,
        boundary="storefront",
        kind="http",
        caller=caller,
        operation="POST /checkout",
        variant="",
        expected="denied",
        outcome="allowed" if verdict == "over-permission" else "denied_authz",
        stage="policy",
        reason="r",
        verdict=verdict,
        elapsed_ms=1.0,
        evidence=Evidence(sent="POST /checkout", request_id=f"req-{caller}-{verdict}"),
    )


def results(*cases: CaseRecord, scenarios: tuple[ScenarioRecord, ...] = ()) -> Results:
    return Results(1, "t", 1.0, 1.0, False, {}, cases, scenarios)


def decision(who: str, allowed: bool = False, request_id: str = "x") -> dict[str, object]:
    return {
        "kind": "decision",
        "request_id": request_id,
        "service": "orders",
        "method": "GET",
        "path": "/orders",
        "peer_spiffe_id": who,
        "allowed": allowed,
        "reason": "no-matching-permit",
    }


def facts(**kw: object) -> RunFacts:
    return RunFacts(trust_domain="shop.test", identities=CALLERS, **kw)  # type: ignore[arg-type]


def whens(alerts: tuple[AlertRecord, ...]) -> list[str]:
    return [a.when for a in alerts]


def test_an_over_permission_raises_a_critical_alert_and_a_pass_raises_none() -> None:
    raised = evaluate(Alerts(), results(case("over-permission")), facts())
    assert whens(raised) == ["over-permission"]
    assert raised[0].severity == "critical"
    assert evaluate(Alerts(), results(case("pass")), facts()) == ()  # the twin


def test_an_expected_call_refused_and_a_failed_scenario_raise_alerts() -> None:
    failed = ScenarioRecord("revocation", False, "fail", "still served", 1.0, {}, (), ())
    raised = evaluate(Alerts(), results(case("under-permission"), scenarios=(failed,)), facts())
    assert whens(raised) == ["expected-refused", "chaos-failed"]


def test_a_denial_spike_outside_the_probes_is_one_alert_with_its_count() -> None:
    mallet = "spiffe://shop.test/orders"
    traffic = [decision(mallet, request_id=f"n{i}") for i in range(25)]
    probe = case("pass", caller="orders")  # a probe's own refusal is not traffic
    traffic.append(decision(mallet, request_id=probe.evidence.request_id or ""))
    raised = evaluate(Alerts(), results(probe), facts(decisions=traffic))
    assert whens(raised) == ["denial-spike"]
    assert (raised[0].subject, raised[0].count) == (mallet, 25)
    fewer = facts(decisions=traffic[:19])
    assert evaluate(Alerts(), results(probe), fewer) == ()  # the twin: under the threshold


def test_denials_during_a_scenario_or_chaos_experiment_are_not_a_spike() -> None:
    """Chaos revokes, rotates and breaks trust to watch the gateways refuse: those refusals are
    the experiment's, not an intruder's. The same refusals outside its window are a spike."""
    mallet = "spiffe://shop.test/orders"

    def at(second: int) -> str:
        return f"2026-12-02T08:00:{second:02d}.000000+00:00"

    traffic = [{**decision(mallet, request_id=f"n{i}"), "time": at(10)} for i in range(25)]
    exercised = [
        {"kind": "chaos", "case": "chaos.key-compromise", "step": "start", "time": at(5)},
        {"kind": "chaos", "case": "chaos.key-compromise", "verdict": "pass", "time": at(15)},
    ]
    assert evaluate(Alerts(), results(), facts(decisions=traffic, events=exercised)) == ()
    scenario = [
        {"kind": "scenario", "scenario": "lifecycle.token-revocation", "step": "start",
         "time": at(9)},
        {"kind": "scenario", "scenario": "lifecycle.token-revocation", "ok": True, "time": at(11)},
    ]  # fmt: skip
    assert evaluate(Alerts(), results(), facts(decisions=traffic, events=scenario)) == ()
    after = [
        {"kind": "chaos", "case": "chaos.key-compromise", "step": "start", "time": at(1)},
        {"kind": "chaos", "case": "chaos.key-compromise", "verdict": "pass", "time": at(5)},
    ]  # the twin: the refusals came after the experiment ended
    raised = evaluate(Alerts(), results(), facts(decisions=traffic, events=after))
    assert whens(raised) == ["denial-spike"]


def test_an_unknown_or_foreign_identity_raises_an_alert_a_known_one_does_not() -> None:
    traffic = [
        decision("spiffe://shop.test/mallory"),
        decision("spiffe://evil.test/orders", allowed=True),
        decision("spiffe://shop.test/orders", allowed=True),
    ]
    raised = evaluate(Alerts(), results(), facts(decisions=traffic))
    assert sorted(a.subject for a in raised) == [
        "spiffe://evil.test/orders",
        "spiffe://shop.test/mallory",
    ]


def test_egress_records_and_a_broken_audit_log_raise_alerts() -> None:
    events = [
        {"kind": "egress.drop", "service": "orders", "destination": "192.0.2.10", "port": 443}
    ]
    raised = evaluate(
        Alerts(), results(), facts(events=events, audit_problem="the audit log was removed")
    )
    assert whens(raised) == ["egress-attempt", "audit-broken"]
    assert raised[1].severity == "critical"


def test_alerts_are_deduplicated_and_capped_per_rule() -> None:
    same = [decision("spiffe://shop.test/mallory", request_id=f"m{i}") for i in range(5)]
    others = [decision(f"spiffe://shop.test/x{i}", request_id=f"x{i}") for i in range(10)]
    settings = Alerts(builtin=False, rules=(AlertRule(when="unknown-identity"),))
    raised = evaluate(
        replace(settings, max_per_rule=Count(4)), results(), facts(decisions=same + others)
    )
    assert len(raised) == 4
    assert (raised[0].subject, raised[0].count) == ("spiffe://shop.test/mallory", 5)
    assert raised[-1].subject == "*"
    assert raised[-1].count == 8  # x2..x9 folded into the last one
    assert "rate limit" in raised[-1].title


def test_spec_rules_tune_or_replace_the_built_in_ones() -> None:
    tuned = Alerts(rules=(AlertRule(when="over-permission", severity="low", match="*bob*"),))
    raised = evaluate(tuned, results(case("over-permission")), facts())
    assert [(a.when, a.severity) for a in raised] == [("over-permission", "low")]
    raised = evaluate(Alerts(builtin=False), results(case("over-permission")), facts())
    assert raised == ()


ALERT = AlertRecord("over-permission", "over-permission", "critical", "t", "d", "s", 1, "k")


def test_the_webhook_posts_signed_bodies_and_retries_a_5xx_with_backoff(tmp_path: Path) -> None:
    sent: list[tuple[str, bytes, Mapping[str, str]]] = []
    answers = iter([503, 500, 204])
    slept: list[float] = []

    def post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> int:
        sent.append((url, body, dict(headers)))
        return next(answers)

    sink = AlertSinkSpec(
        kind="webhook", url="http://127.0.0.1:9/hook", secret_env=EnvName("TP_KEY")
    )
    [done] = dispatch(
        [sink],
        [ALERT],
        run="r1",
        run_dir=tmp_path,
        base_dir=tmp_path,
        env={"TP_KEY": "k3y"},
        post=post,
        sleep=slept.append,
    )
    assert (done.sent, done.problems) == (1, ())
    assert len(sent) == 3
    assert [s for s in slept if s >= 0.5] == [0.5, 1.0]  # backoff (rate-limit waits are shorter)
    _, body, headers = sent[-1]
    mac = hmac.new(b"k3y", headers[TIMESTAMP_HEADER].encode() + b"." + body, hashlib.sha256)
    assert headers[SIGNATURE_HEADER] == "sha256=" + mac.hexdigest()
    assert json.loads(body)["alert"]["rule"] == "over-permission"


@pytest.mark.parametrize(("answers", "attempts"), [([400], 1), ([503] * 9, 3)])
def test_the_webhook_gives_up_on_a_refusal_and_after_its_retries(
    tmp_path: Path, answers: list[int], attempts: int
) -> None:
    calls = iter(answers)
    count = []

    def post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> int:
        count.append(1)
        return next(calls)

    sink = AlertSinkSpec(
        kind="webhook", url="http://127.0.0.1:9/", secret_env=EnvName("TP_KEY"), retries=Count(2)
    )
    [done] = dispatch(
        [sink],
        [ALERT],
        run="r",
        run_dir=tmp_path,
        base_dir=tmp_path,
        env={"TP_KEY": "k"},
        post=post,
        sleep=lambda _: None,
    )
    assert len(count) == attempts
    assert done.sent == 0
    assert done.problems


def test_a_webhook_without_its_key_sends_nothing(tmp_path: Path) -> None:
    def post(*_: object) -> int:
        raise AssertionError("must not send unsigned")

    sink = AlertSinkSpec(kind="webhook", url="http://127.0.0.1:9/", timeout=Duration(1))
    [done] = dispatch(
        [sink], [ALERT], run="r", run_dir=tmp_path, base_dir=tmp_path, env={}, post=post
    )
    assert "no signing key" in done.problems[0]


def test_terminal_jsonl_slack_and_github_sinks(tmp_path: Path) -> None:
    err: list[str] = []
    out: list[str] = []
    bodies: list[bytes] = []

    def post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> int:
        bodies.append(body)
        return 200

    low = replace(ALERT, severity="low", key="k2", subject="s2")
    sinks = [
        AlertSinkSpec(kind="terminal"),
        AlertSinkSpec(kind="jsonl"),
        AlertSinkSpec(kind="slack", url="http://127.0.0.1:9/slack"),
        AlertSinkSpec(kind="github", min_severity="high"),
    ]
    dispatch(
        sinks,
        [ALERT, low],
        run="r",
        run_dir=tmp_path,
        base_dir=tmp_path,
        write_err=err.append,
        write_out=out.append,
        post=post,
        sleep=lambda _: None,
    )
    assert len(err) == 2
    assert err[0].startswith("ALERT CRITICAL [over-permission]")
    assert len((tmp_path / "alerts.jsonl").read_text().splitlines()) == 2
    assert {"text", "blocks"} <= set(json.loads(bodies[0]))
    assert out == [github_line(ALERT)]  # the low one is below the sink's floor
    assert github_line(replace(ALERT, detail="a\nb%")).endswith("t: a%0Ab%25")


def test_a_service_that_only_tried_egress_is_not_called_served_or_through() -> None:
    """`egress.observed` fails when a service itself tried something undeclared, which the
    sandbox blocked: one egress alert saying so — not "egress got through", not an
    over-permission "served" — while a probe that did get through is still called that."""
    tried = case("over-permission", probe="egress.observed", caller="orders")
    through = case("over-permission", probe="egress.undeclared-tcp", caller="orders")
    raised = evaluate(Alerts(), results(tried, through), facts())
    titles = sorted(a.title.split(":")[0] for a in raised)
    assert titles == [
        "a service tried undeclared egress (blocked)",
        "egress got through",
        "over-permission",
    ]
    (over,) = [a for a in raised if a.when == "over-permission"]
    assert "egress.undeclared-tcp" in over.title  # the one that got through, not the tried one
