"""The spec's `audit:` and `alerts:` sections (issue 16), kept beside `spec.model`, which holds
them as `Spec.audit` and `Spec.alerts`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from trustproof.spec.fields import doc
from trustproof.spec.values import Count, Duration, EnvName, RelPath

AlertWhen = Literal[
    "over-permission",
    "expected-refused",
    "denial-spike",
    "unknown-identity",
    "egress-attempt",
    "audit-broken",
    "chaos-failed",
    "case-failed",
]
Severity = Literal["info", "low", "medium", "high", "critical"]
AlertSinkKind = Literal["terminal", "jsonl", "webhook", "slack", "github"]


@dataclass(frozen=True)
class AuditSettings:
    kek_file: RelPath | None = doc(
        "File holding the audit log's key-encryption key (base64 of 32 bytes, mode 0600), "
        "outside the run directory. Default: $TRUSTPROOF_AUDIT_KEK, else "
        "~/.config/trustproof/audit.kek (made once).",
        default=None,
    )
    checkpoint_every: Count = doc(
        "Records between two signed checkpoints (each one is fsync-ed).", default=Count(256)
    )
    batch_records: Count = doc(
        "Records written together (a kill -9 loses at most one batch). 1: each gateway "
        "decision is written before its request is forwarded, and a failing write refuses "
        "that request (one write a request).",
        default=Count(64),
    )


@dataclass(frozen=True)
class AlertRule:
    when: AlertWhen = doc("What raises the alert.")
    name: str | None = doc("Name of the rule (default: `when`).", default=None)
    severity: Severity = doc("Severity of the alerts it raises.", default="high")
    match: str = doc("Glob on case ids (or identities) the rule applies to.", default="*")
    threshold: Count = doc(
        "denial-spike: denials for one identity in the run that raise the alert.",
        default=Count(20),
    )


@dataclass(frozen=True)
class AlertSinkSpec:
    kind: AlertSinkKind = doc("Where alerts go.")
    url: str | None = doc(
        "webhook/slack: the URL to POST to (loopback only in tests).", default=None
    )
    secret_env: EnvName | None = doc(
        "webhook: the environment variable holding the HMAC-SHA256 key that signs each body "
        "(header X-Trustproof-Signature: sha256=<hex>).",
        default=None,
    )
    path: RelPath | None = doc(
        "jsonl: the file alerts are appended to (default: alerts.jsonl in the run directory).",
        default=None,
    )
    min_severity: Severity = doc("Alerts below this severity are not sent.", default="info")
    retries: Count = doc("webhook/slack: attempts after the first one.", default=Count(3))
    timeout: Duration = doc("webhook/slack: time allowed for one attempt.", default=Duration(5))


@dataclass(frozen=True)
class Alerts:
    builtin: bool = doc(
        "Apply the built-in rules (every `when` kind at its default severity).", default=True
    )
    rules: tuple[AlertRule, ...] = doc("Rules beyond (or tuning) the built-in ones.", default=())
    sinks: tuple[AlertSinkSpec, ...] = doc(
        "Where alerts are sent, besides results.json and the reports.", default=()
    )
    max_per_rule: Count = doc(
        "Alerts one rule may raise in a run; the rest are counted in its last alert.",
        default=Count(20),
    )


def alert_problems(alerts: Alerts) -> list[tuple[tuple[str | int, ...], str, str]]:
    """What `trustproof validate` says about `alerts.sinks`: (field path, message, hint)."""
    found: list[tuple[tuple[str | int, ...], str, str]] = []
    for i, sink in enumerate(alerts.sinks):
        path: tuple[str | int, ...] = ("alerts", "sinks", i)
        if sink.kind in ("webhook", "slack"):
            if sink.url is None:
                found.append((path, f"a {sink.kind} sink needs a url", "url: https://…/hook"))
            elif not sink.url.startswith(("http://", "https://")):
                found.append(((*path, "url"), f"not an http(s) URL: {sink.url!r}", ""))
        if sink.kind == "webhook" and sink.secret_env is None:
            found.append(
                (
                    path,
                    "a webhook sink signs what it sends: it needs secret_env",
                    "secret_env: NAME of an environment variable holding the HMAC key",
                )
            )
    return found
