"""Where alerts go (`alerts.sinks` in the spec), besides `results.json` and every report.

* ``terminal``  one line per alert on standard error;
* ``jsonl``     one JSON object per alert appended to a file (0600; default
                ``<run>/alerts.jsonl``);
* ``webhook``   an HTTP POST per alert, body ``{"source": "trustproof", "run": ..., "alert":
                {...}}``, signed: ``X-Trustproof-Timestamp: <unix seconds>`` and
                ``X-Trustproof-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">``
                under the key in the environment variable `secret_env` (required);
* ``slack``     the same POST with a Slack-compatible body (``text`` and ``blocks``), signed the
                same way when `secret_env` is given;
* ``github``    GitHub Actions workflow commands (``::error``/``::warning``/``::notice``) on
                standard output, which become annotations.

HTTP sinks retry a connection error, a 429 or a 5xx up to `retries` times with exponential
backoff (0.5 s doubling, at most 8 s), each attempt bounded by `timeout`; they send at most
`RATE_PER_SECOND` alerts a second. A sink that cannot deliver is logged and reported, never
fails the run nor hides its verdict.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trustproof.results import AlertRecord
from trustproof.scrub import scrub
from trustproof.spec.auditing import AlertSinkSpec, Severity

log = logging.getLogger("trustproof.alerts")

SEVERITIES: tuple[Severity, ...] = ("info", "low", "medium", "high", "critical")
RATE_PER_SECOND = 10
SIGNATURE_HEADER = "X-Trustproof-Signature"
TIMESTAMP_HEADER = "X-Trustproof-Timestamp"
MAX_BACKOFF = 8.0


def sign(key: bytes, timestamp: str, body: bytes) -> str:
    """The signature header's value: ``sha256=`` and the HMAC of ``<timestamp>.<body>``."""
    mac = hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def at_least(alert: AlertRecord, minimum: Severity) -> bool:
    level = alert.severity if alert.severity in SEVERITIES else "critical"
    return SEVERITIES.index(level) >= SEVERITIES.index(minimum)


def line_of(alert: AlertRecord) -> str:
    count = f" (x{alert.count})" if alert.count > 1 else ""
    return f"ALERT {alert.severity.upper()} [{alert.rule}] {alert.title}{count}: {alert.detail}"


def _github_escape(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def github_line(alert: AlertRecord) -> str:
    level = {"critical": "error", "high": "error", "medium": "warning"}.get(
        alert.severity, "notice"
    )
    title = _github_escape(f"trustproof alert: {alert.rule}").replace(",", "%2C")
    return f"::{level} title={title}::{_github_escape(alert.title + ': ' + alert.detail)}"


def slack_body(alert: AlertRecord, run: str) -> dict[str, Any]:
    text = f"*{alert.severity.upper()}* trustproof alert `{alert.rule}`: {alert.title}"
    return {
        "text": text,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": text}},
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": f"{alert.detail} (run {run})"}],
            },
        ],
    }


Post = Callable[[str, bytes, Mapping[str, str], float], int]


def urllib_post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> int:
    """POST `body`; the HTTP status (an HTTP error status too); OSError when nothing answered."""
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")  # noqa: S310 (the spec's URL)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


@dataclass
class Delivery:
    """What one sink did: alerts delivered, and the problems it met."""

    sink: str
    sent: int = 0
    problems: tuple[str, ...] = ()


@dataclass
class HttpSender:
    url: str
    key: bytes | None
    retries: int
    timeout: float
    post: Post = urllib_post
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time
    _last: float = 0.0

    def send(self, body: bytes) -> str | None:
        """Deliver one body; None, or why it could not be delivered."""
        wait = self._last + 1 / RATE_PER_SECOND - time.monotonic()
        if wait > 0:
            self.sleep(wait)
        self._last = time.monotonic()
        headers = {"Content-Type": "application/json", "User-Agent": "trustproof-alerts"}
        problem = "not sent"
        for attempt in range(self.retries + 1):
            if attempt:
                self.sleep(min(MAX_BACKOFF, 0.5 * 2 ** (attempt - 1)))
            if self.key is not None:
                stamp = str(int(self.clock()))
                headers[TIMESTAMP_HEADER] = stamp
                headers[SIGNATURE_HEADER] = sign(self.key, stamp, body)
            try:
                status = self.post(self.url, body, headers, self.timeout)
            except OSError as exc:
                problem = f"{type(exc).__name__}: {exc}"
                continue
            if 200 <= status < 300:
                return None
            problem = f"HTTP {status}"
            if status != 429 and status < 500:
                break  # the receiver refuses it: sending again will not help
        return scrub(f"{self.url}: {problem} after {attempt + 1} attempt(s)")


def _secret(spec: AlertSinkSpec, env: Mapping[str, str]) -> bytes | None:
    if spec.secret_env is None:
        return None
    value = env.get(spec.secret_env)
    return value.encode() if value else None


def _post_all(
    spec: AlertSinkSpec,
    alerts: Sequence[AlertRecord],
    run: str,
    *,
    env: Mapping[str, str],
    post: Post,
    sleep: Callable[[float], None],
) -> Delivery:
    delivery = Delivery(spec.kind)
    key = _secret(spec, env)
    if spec.url is None:
        delivery.problems = (f"{spec.kind} sink: no url",)
        return delivery
    if spec.kind == "webhook" and key is None:
        delivery.problems = (
            f"webhook sink: no signing key (set secret_env, and that variable, "
            f"{spec.secret_env or 'unset'}); nothing sent",
        )
        return delivery
    sender = HttpSender(spec.url, key, spec.retries, spec.timeout.seconds, post, sleep)
    problems: list[str] = []
    for alert in alerts:
        payload = (
            slack_body(alert, run)
            if spec.kind == "slack"
            else {"source": "trustproof", "run": run, "alert": alert.to_json()}
        )
        body = scrub(json.dumps(payload, separators=(",", ":"))).encode()
        problem = sender.send(body)
        if problem is None:
            delivery.sent += 1
        else:
            problems.append(problem)
    delivery.problems = tuple(problems)
    return delivery


def _append_jsonl(path: Path, alerts: Sequence[AlertRecord], run: str) -> Delivery:
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as handle:
            for alert in alerts:
                handle.write(scrub(json.dumps({"run": run, **alert.to_json()})) + "\n")
    except OSError as exc:
        return Delivery("jsonl", problems=(f"{path}: {exc.strerror}",))
    return Delivery("jsonl", sent=len(alerts))


def dispatch(
    sinks: Sequence[AlertSinkSpec],
    alerts: Sequence[AlertRecord],
    *,
    run: str,
    run_dir: Path,
    base_dir: Path,
    env: Mapping[str, str] = os.environ,
    write_err: Callable[[str], None] = lambda line: log.warning("%s", line),
    write_out: Callable[[str], None] = print,
    post: Post = urllib_post,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Delivery]:
    """Send `alerts` to every sink (each its own severity floor); what each did."""
    done: list[Delivery] = []
    for spec in sinks:
        chosen = [a for a in alerts if at_least(a, spec.min_severity)]
        if spec.kind == "terminal":
            for alert in chosen:
                write_err(scrub(line_of(alert)))
            done.append(Delivery("terminal", sent=len(chosen)))
        elif spec.kind == "github":
            for alert in chosen:
                write_out(scrub(github_line(alert)))
            done.append(Delivery("github", sent=len(chosen)))
        elif spec.kind == "jsonl":
            path = (base_dir / spec.path) if spec.path else run_dir / "alerts.jsonl"
            done.append(_append_jsonl(path, chosen, run))
        else:
            done.append(_post_all(spec, chosen, run, env=env, post=post, sleep=sleep))
    for delivery in done:
        for problem in delivery.problems:
            log.error("alert sink %s could not deliver: %s", delivery.sink, problem)
    return done
