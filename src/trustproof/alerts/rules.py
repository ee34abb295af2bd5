"""Which alerts a run raises, no I/O: built-in rules and the spec's `alerts.rules`, over the run's
results and the gateways' audit records; deduplicated (one alert per rule and subject, with a
count) and capped per rule (`alerts.max_per_rule`; the rest counted in one summary alert).

What each `when` looks at:

* ``over-permission``   a case whose verdict is over-permission (a call that must be refused
                        was served);
* ``expected-refused``  a case whose verdict is under-permission (an expected call refused);
* ``denial-spike``      an identity refused at least `threshold` times by the gateways in
                        traffic trustproof did not make on purpose (a probe's request ids, and
                        whatever happened during a scenario or a chaos experiment, are excluded:
                        they are refused on purpose — `exercise_windows`);
* ``unknown-identity``  a gateway decision about an identity that is not one of the spec's, or
                        of another trust domain, again outside the probes, scenarios and chaos;
* ``egress-attempt``    a failing ``egress.*`` case, and every ``egress.drop`` / ``dns.refused``
                        audit record (what a service tried on its own);
* ``audit-broken``      the audit log failed (refused records) or does not verify;
* ``chaos-failed``      a failing scenario or ``chaos.*`` case;
* ``case-failed``       any failing case (not built in: add it as a rule to be told of each).
"""

from __future__ import annotations

import fnmatch
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from trustproof.results import AlertRecord, CaseRecord, Results
from trustproof.spec.auditing import AlertRule, Alerts
from trustproof.spec.values import Count

BUILTIN: tuple[AlertRule, ...] = (
    AlertRule(when="over-permission", severity="critical"),
    AlertRule(when="expected-refused", severity="high"),
    AlertRule(when="denial-spike", severity="medium"),
    AlertRule(when="unknown-identity", severity="high"),
    AlertRule(when="egress-attempt", severity="high"),
    AlertRule(when="audit-broken", severity="critical"),
    AlertRule(when="chaos-failed", severity="high"),
)


@dataclass(frozen=True)
class RunFacts:
    """What the rules read besides the results."""

    decisions: Sequence[Mapping[str, Any]] = ()  # gateway decision records (audit JSON)
    events: Sequence[Mapping[str, Any]] = ()  # other audit records: egress.drop, dns.refused
    audit_problem: str | None = None  # the audit log's failure or verification problem
    trust_domain: str = ""
    identities: frozenset[str] = frozenset()  # the spec's services and personas


def rules_of(settings: Alerts) -> tuple[AlertRule, ...]:
    """The rules in force: the built-in ones (unless turned off) with the spec's replacing a
    built-in of the same name."""
    named = {(r.name or r.when): r for r in settings.rules}
    builtin = tuple(r for r in BUILTIN if r.when not in named) if settings.builtin else ()
    return (*builtin, *settings.rules)


def evaluate(settings: Alerts, results: Results, facts: RunFacts) -> tuple[AlertRecord, ...]:
    raised: list[AlertRecord] = []
    for rule in rules_of(settings):
        found = [a for a in _raise(rule, results, facts) if _matches(rule, a.subject)]
        raised.extend(_capped(_deduplicated(found), settings.max_per_rule))
    return tuple(raised)


def _matches(rule: AlertRule, subject: str) -> bool:
    return rule.match == "*" or fnmatch.fnmatchcase(subject, rule.match)


def _alert(rule: AlertRule, title: str, detail: str, subject: str, count: int = 1) -> AlertRecord:
    name = rule.name or rule.when
    return AlertRecord(
        rule=name,
        when=rule.when,
        severity=rule.severity,
        title=title,
        detail=detail,
        subject=subject,
        count=count,
        key=f"{name}:{subject}",
    )


def _raise(rule: AlertRule, results: Results, facts: RunFacts) -> Iterable[AlertRecord]:
    handler = _HANDLERS[rule.when]
    return handler(rule, results, facts)


def _case_alerts(rule: AlertRule, cases: Iterable[CaseRecord], title: str) -> list[AlertRecord]:
    return [
        _alert(
            rule,
            f"{title}: {case.id}",
            f"expected {case.expected}; observed {case.observed} ({case.reason})",
            case.id,
        )
        for case in cases
    ]


OBSERVED = "egress.observed"
"""The case that fails when a service itself tried undeclared egress — blocked, not served: its
alert is the egress rule's, worded for what happened."""


def _over(rule: AlertRule, results: Results, _: RunFacts) -> list[AlertRecord]:
    bad = (c for c in results.cases if c.verdict == "over-permission" and c.probe != OBSERVED)
    return _case_alerts(rule, bad, "over-permission: a call that must be refused was served")


def _refused(rule: AlertRule, results: Results, _: RunFacts) -> list[AlertRecord]:
    bad = (c for c in results.cases if c.verdict == "under-permission")
    return _case_alerts(rule, bad, "an expected call was refused")


def _failed(rule: AlertRule, results: Results, _: RunFacts) -> list[AlertRecord]:
    return _case_alerts(rule, results.failures, f"case {rule.when}")


def _probe_requests(results: Results) -> set[str]:
    ids: set[str] = set()
    for case in results.cases:
        if case.evidence.request_id:
            ids.add(case.evidence.request_id)
        audit = case.evidence.audit or {}
        if isinstance(audit.get("request_id"), str):
            ids.add(audit["request_id"])
    return ids


def _identity(decision: Mapping[str, Any]) -> str | None:
    for key in ("peer_spiffe_id", "token_subject", "principal"):
        value = decision.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _when(record: Mapping[str, Any]) -> datetime | None:
    text = record.get("time")
    if not isinstance(text, str):
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def exercise_windows(events: Iterable[Mapping[str, Any]]) -> list[tuple[datetime, datetime]]:
    """When trustproof broke trust on purpose: from the first to the last record of each lifecycle
    scenario (``scenario`` records, by ``scenario``) and chaos experiment (``chaos`` records, by
    ``case``) — its start, its steps, its verdict."""
    spans: dict[tuple[str, str], list[datetime]] = {}
    for event in events:
        kind = event.get("kind")
        key = event.get("scenario") if kind == "scenario" else event.get("case")
        when = _when(event)
        if kind in ("scenario", "chaos") and isinstance(key, str) and when is not None:
            spans.setdefault((str(kind), key), []).append(when)
    return [(min(times), max(times)) for times in spans.values() if len(times) > 1]


def _not_probes(results: Results, facts: RunFacts) -> list[Mapping[str, Any]]:
    """The gateway decisions of traffic trustproof did not make on purpose: neither a probe's
    request nor anything during a scenario or a chaos experiment (which revoke, rotate and break
    trust to watch the gateways refuse)."""
    probes = _probe_requests(results)
    windows = exercise_windows(facts.events)

    def exercised(decision: Mapping[str, Any]) -> bool:
        when = _when(decision)
        return when is not None and any(start <= when <= end for start, end in windows)

    return [d for d in facts.decisions if d.get("request_id") not in probes and not exercised(d)]


def _spike(rule: AlertRule, results: Results, facts: RunFacts) -> list[AlertRecord]:
    denials = Counter(
        who
        for d in _not_probes(results, facts)
        if not d.get("allowed") and (who := _identity(d)) is not None
    )
    threshold = rule.threshold
    return [
        _alert(
            rule,
            f"denial spike: {who} refused {count} times",
            f"{count} requests of {who} refused by the gateways outside the probes "
            f"(threshold {threshold})",
            who,
            count,
        )
        for who, count in denials.most_common()
        if count >= threshold
    ]


def _unknown(rule: AlertRule, results: Results, facts: RunFacts) -> list[AlertRecord]:
    prefix = f"spiffe://{facts.trust_domain}/"
    found: list[AlertRecord] = []
    for decision in _not_probes(results, facts):
        who = _identity(decision)
        if who is None:
            continue
        name = who.removeprefix(prefix)
        if name in facts.identities and (who.startswith(prefix) or "://" not in who):
            continue
        found.append(
            _alert(
                rule,
                f"access attempt by an unknown identity: {who}",
                f"{decision.get('method')} {decision.get('service')} {decision.get('path')}: "
                f"{'allowed' if decision.get('allowed') else 'refused'} "
                f"({decision.get('reason')})",
                who,
            )
        )
    return found


def _egress(rule: AlertRule, results: Results, facts: RunFacts) -> list[AlertRecord]:
    failing = [c for c in results.failures if c.probe.startswith("egress.")]
    found = _case_alerts(rule, (c for c in failing if c.probe != OBSERVED), "egress got through")
    tried = (c for c in failing if c.probe == OBSERVED)
    found += _case_alerts(rule, tried, "a service tried undeclared egress (blocked)")
    for event in facts.events:
        kind = event.get("kind")
        if kind not in ("egress.drop", "dns.refused"):
            continue
        service = str(event.get("service", "?"))
        where = event.get("destination") or event.get("name") or event.get("address") or "?"
        found.append(
            _alert(
                rule,
                f"egress attempt by {service}: {where}",
                f"{kind}: {service} tried {where}"
                + (f":{event['port']}" if event.get("port") else ""),
                f"{service}->{where}",
                int(event.get("count") or 1),
            )
        )
    return found


def _audit(rule: AlertRule, _: Results, facts: RunFacts) -> list[AlertRecord]:
    if facts.audit_problem is None:
        return []
    return [_alert(rule, "the audit log is broken", facts.audit_problem, "audit.log")]


def _chaos(rule: AlertRule, results: Results, _: RunFacts) -> list[AlertRecord]:
    found = _case_alerts(
        rule, (c for c in results.failures if c.probe.startswith("chaos.")), "chaos failed"
    )
    found.extend(
        _alert(rule, f"scenario failed: {s.id}", s.summary, s.id) for s in results.failed_scenarios
    )
    return found


_HANDLERS = {
    "over-permission": _over,
    "expected-refused": _refused,
    "denial-spike": _spike,
    "unknown-identity": _unknown,
    "egress-attempt": _egress,
    "audit-broken": _audit,
    "chaos-failed": _chaos,
    "case-failed": _failed,
}


def _deduplicated(alerts: Iterable[AlertRecord]) -> list[AlertRecord]:
    merged: dict[str, AlertRecord] = {}
    for alert in alerts:
        seen = merged.get(alert.key)
        merged[alert.key] = (
            alert
            if seen is None
            else AlertRecord(**{**seen.to_json(), "count": seen.count + alert.count})
        )
    return list(merged.values())


def _capped(alerts: list[AlertRecord], limit: Count | int) -> list[AlertRecord]:
    if len(alerts) <= limit:
        return alerts
    kept, rest = alerts[: limit - 1], alerts[limit - 1 :]
    first = rest[0]
    summary = AlertRecord(
        rule=first.rule,
        when=first.when,
        severity=first.severity,
        title=f"{len(rest)} more {first.when} alerts (rate limit: {limit} per rule)",
        detail=", ".join(a.subject for a in rest[:10]) + (" ..." if len(rest) > 10 else ""),
        subject="*",
        count=sum(a.count for a in rest),
        key=f"{first.rule}:*",
    )
    return [*kept, summary]
