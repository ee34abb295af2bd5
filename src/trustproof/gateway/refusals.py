"""The gateway's refusals: the JSON answer naming the reason and the request id (`deny`), and a
bounded log of requests the HTTP parser refused — counted, and summarised in one line at most
once per interval, instead of one traceback per request.

Each refusal is still audited one by one (the gateway writes an audit event for it); the log only
has to say that it is happening. Without a bound, 100 malformed requests once added 1.6 MB of
tracebacks to the controller's log — a cheap way to fill a disk. Sans-I/O: the caller passes the
time (monotonic seconds) and logs the line it gets back.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

from trustproof.gateway.h1server import Response

SUMMARY_INTERVAL_SECONDS = 10.0
MAX_KINDS_SHOWN = 5


@dataclass
class RefusalSummary:
    """Counts refusals by kind (an exception class name, never the request's bytes) and returns a
    summary line for the first refusal and then at most once per `interval` seconds."""

    what: str  # e.g. "gateway of orders"
    interval: float = SUMMARY_INTERVAL_SECONDS
    total: int = 0
    _kinds: Counter[str] = field(default_factory=Counter)
    _since: float | None = None
    _last_line: float | None = None

    def note(self, kind: str, now: float) -> str | None:
        """Count one refusal; a line to log now, or None (it will be in a later line)."""
        self.total += 1
        self._kinds[kind] += 1
        if self._since is None:
            self._since = now
        if self._last_line is None or now - self._last_line >= self.interval:
            return self.flush(now)
        return None

    def flush(self, now: float) -> str | None:
        """The line for refusals not yet reported (None when there are none); resets the count."""
        count = sum(self._kinds.values())
        if not count or self._since is None:
            return None
        shown = ", ".join(f"{kind} x{n}" for kind, n in self._kinds.most_common(MAX_KINDS_SHOWN))
        if len(self._kinds) > MAX_KINDS_SHOWN:
            shown += ", …"
        noun = "request" if count == 1 else "requests"
        line = (
            f"{self.what}: {count} malformed {noun} refused by the HTTP parser in the last "
            f"{max(now - self._since, 0.0):.0f} s ({shown}); each is in the audit log "
            f"(stage http, reason malformed-request)"
        )
        self._kinds.clear()
        self._since = None
        self._last_line = now
        return line


def deny(
    request_id: str,
    status: int,
    stage: str,
    reason: str,
    detail: str,
    *,
    error: str = "access_denied",
) -> Response:
    """A refusal: `status`, and a JSON body saying the stage, the reason and the request id
    (never anything of the request itself)."""
    headers = [
        ("Content-Type", "application/json; charset=utf-8"),
        ("X-Trustproof-Request-Id", request_id),
        ("X-Trustproof-Decision", "deny"),
        ("Cache-Control", "no-store"),
    ]
    if status == 401:
        kind = "invalid_token" if stage == "token" else "invalid_request"
        headers.append(("WWW-Authenticate", f'Bearer realm="trustproof", error="{kind}"'))
    body = {
        "error": error,
        "reason": reason,
        "stage": stage,
        "detail": detail,
        "request_id": request_id,
    }
    return Response(status, headers, json.dumps(body).encode())
