"""How an HTTP answer is read, assuming nothing about the server that sent it (sans-I/O).

An answer counts as *allowed* only on positive evidence that the service's handler ran, and as a
refusal only when it looks like one; anything else is ``inconclusive`` — never allowed, never a
pass. Behind a trustproof gateway the gateway says which (it is ours: we know its stages). From a
server trustproof did not write (``gateway: none``, or a service's own port) it is read from what
any server sends:

=========================================================  ==================================
what came back (no gateway in front)                       outcome
=========================================================  ==================================
a status the service declares under ``refuses``             that stage's refusal
495/496/497; a 400 page "No required SSL certificate was    ``denied_tls``
sent" / "The SSL certificate error" / "The plain HTTP
request was sent to HTTPS port" (nginx, HAProxy)
401 (JSON ``stage: tls``: ``denied_tls``)                    ``denied_authn``
403; 400 (any other page: a bad path, a bad request);       ``denied_authz``
421 (misdirected: wrong Host/SNI); 413/414/431 (too large)
404/405/501 without the marker: no handler served it (a     ``denied_authz``
route that does not exist is as refused as a denied one;
501: the server implements no such method, RFC 9110
§15.6.2 — Python's http.server answers HEAD so)
1xx, 5xx                                                    ``inconclusive``
the marker ``X-Served-By`` (any case) naming the service    ``allowed``
the service's declared ``expect`` holds                     ``allowed``
(declared ``expect`` that does not hold)                    ``inconclusive``
no ``expect`` declared: a 2xx/3xx                           ``allowed``
any other status (409, 418, 429, a 404 the marker claims    ``inconclusive``
for another service, ...)
=========================================================  ==================================

Behind a trustproof gateway: its own refusal (``X-Trustproof-Decision: deny``) by its stage (tls
-> ``denied_tls``, 401 -> ``denied_authn``, other 4xx -> ``denied_authz``, 5xx ->
``inconclusive``); anything else was forwarded, whatever its status and body say (a forwarded 403
is an allow that reached the service: reading it as a refusal would hide an over-permission),
except a 1xx/5xx the service answered, which is ``inconclusive``. The service's own refusal of a
request that did not bring the gateway's proof (401 ``not from the gateway`` with the marker) is
``denied_authn`` everywhere.

Header names match in any case (RFC 9110 §5.1): `header` looks one up in any mapping.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from trustproof.probes.model import Outcome
from trustproof.spec.model import Refuses, Served, Spec

NO_HANDLER = frozenset({404, 405, 501})
TOO_LARGE = frozenset({413, 414, 431})
"""Content too large, URI too long, header fields too large (RFC 9110 §15.5.14-15, RFC 6585 §5):
the server refused the request before any handler read it."""
"""Statuses that say no handler took the request: without the marker, nothing served it."""

MARKER = "X-Served-By"
DECISION = "X-Trustproof-Decision"
REQUEST_ID = "X-Trustproof-Request-Id"

# Transport refusals sent as pages (nginx's own codes, and the 400 pages nginx and HAProxy send
# for them): status -> (text of the 400 page, reason).
TLS_PAGES = {
    496: ("no required ssl certificate was sent", "client-cert-required"),
    495: ("the ssl certificate error", "client-cert-refused"),
    497: ("the plain http request was sent to https port", "plaintext-to-tls-port"),
}
DECLARED_OUTCOME: Mapping[str, Outcome] = {
    "tls": "denied_tls",
    "authn": "denied_authn",
    "authz": "denied_authz",
}
NO_GATEWAY_PROOF = "not from the gateway"

Classified = tuple[Outcome, str, str]
"""(outcome, stage, reason)"""


@dataclass(frozen=True)
class Context:
    """What is known about where an answer came from."""

    from_gateway: bool = False  # a trustproof gateway stands in front
    service: str | None = None  # whose marker is positive evidence (None: any service's)
    served: Served | None = None  # declared evidence that the handler ran (route or service)
    refuses: Refuses | None = None  # declared refusals by stage

    @property
    def stage_is_verdict(self) -> bool:
        """Whether the refusing stage is part of the verdict: behind our gateway (we know its
        stages) or where the service declares how it refuses; otherwise it is evidence only."""
        return self.from_gateway or self.refuses is not None

    @classmethod
    def of(cls, spec: Spec, service: str, operation: str = "", *, door: str = "ingress") -> Context:
        """The context of `service`'s ingress (`operation` picks a route's own ``expect``), or,
        with ``door="direct"``, of its own port behind its gateway (nothing declared applies)."""
        declared = spec.services.get(service)
        if declared is None or door == "direct":
            return cls(service=service)
        if declared.ingress.gateway != "none":
            return cls(from_gateway=True, service=service)
        expect = declared.expect
        served: Served | None = None
        if expect is not None:
            served = expect.routes.get(operation) or (expect if _declares(expect) else None)
        return cls(service=service, served=served, refuses=declared.refuses)


def _declares(served: Served) -> bool:
    return any(v is not None for v in (served.status, served.header, served.body, served.json))


def header(headers: Mapping[str, str], name: str) -> str | None:
    """The value of the field `name`, matched in any case, whatever mapping `headers` is."""
    value = headers.get(name)
    if value is not None:
        return value
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)


def header_values(headers: Mapping[str, str], name: str) -> list[str]:
    """Every value of the field `name` (a field may come more than once), matched in any case."""
    wanted = name.lower()
    return [v for k, v in headers.items() if k.lower() == wanted]


def body_json(body: bytes) -> dict[str, Any]:
    """The body as a JSON object, or {} when it is not one."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def read_answer(status: int, headers: Mapping[str, str], body: bytes, ctx: Context) -> Classified:
    """(outcome, stage, reason) of an HTTP answer in `ctx` (see the table above)."""
    served_by = header(headers, MARKER)
    data = body_json(body)
    if status == 401 and served_by and data.get("error") == NO_GATEWAY_PROOF:
        return "denied_authn", "service", str(data.get("reason", "no-gateway-proof"))
    if ctx.from_gateway:
        return _through_gateway(status, headers, data, served_by)
    refused = _refusal(status, body, data, served_by, ctx.refuses)
    if refused is not None:
        return refused
    if status < 200 or status >= 500:
        return "inconclusive", str(data.get("stage", "")), _neither(status, data)
    if served_by is not None and (ctx.service is None or served_by.strip() == ctx.service):
        return "allowed", "", f"served by {served_by} (HTTP {status})"
    if ctx.served is not None:
        unmet = unmet_expect(ctx.served, status, headers, body)
        if not unmet:
            return "allowed", "", f"the declared expect holds (HTTP {status})"
        return "inconclusive", "", f"HTTP {status} does not show the handler ran: {unmet}"
    if 200 <= status < 400:
        return "allowed", "", f"HTTP {status}, not a known refusal (no service marker)"
    return "inconclusive", "", _neither(status, data)


def _neither(status: int, data: Mapping[str, Any]) -> str:
    said = str(data.get("reason") or data.get("error") or "")[:80]
    tail = f" ({said})" if said else ""
    return f"HTTP {status}{tail}: neither served nor a known refusal"


def _through_gateway(
    status: int, headers: Mapping[str, str], data: Mapping[str, Any], served_by: str | None
) -> Classified:
    reason = str(data.get("reason", "")) or f"HTTP {status}"
    stage = str(data.get("stage", ""))
    if "deny" in header_values(headers, DECISION):  # any of them: a repeated field fails closed
        if status < 400 or status >= 500:
            return "inconclusive", stage or "upstream", reason
        if stage == "tls":
            return "denied_tls", stage, reason
        if status == 401:
            return "denied_authn", stage or "token", reason
        return "denied_authz", stage or "policy", reason
    by = f"served by {served_by}" if served_by else "forwarded by the gateway"
    if status < 200 or status >= 500:
        return "inconclusive", "upstream", f"{by}; the service answered HTTP {status}"
    if served_by:
        return "allowed", "", f"{by} (HTTP {status})"
    return "allowed", "", f"{by} (HTTP {status}, no service marker)"


def _refusal(
    status: int,
    body: bytes,
    data: Mapping[str, Any],
    served_by: str | None,
    refuses: Refuses | None,
) -> Classified | None:
    """The refusal a server trustproof did not write answered, or None."""
    stage = str(data.get("stage", ""))
    reason = str(data.get("reason", "")) or f"HTTP {status}"
    if refuses is not None:
        for declared, outcome in DECLARED_OUTCOME.items():
            if status in (getattr(refuses, declared) or ()):
                return outcome, declared, f"declared {declared} refusal: {reason}"
    text = body[:400].decode("utf-8", "replace").lower()
    for code, (page, why) in TLS_PAGES.items():
        if status == code or (status == 400 and page in text):
            return "denied_tls", "tls", reason if data.get("reason") else why
    if status == 401:
        return ("denied_tls" if stage == "tls" else "denied_authn"), stage or "token", reason
    if status == 403:
        return "denied_authz", stage or "policy", reason
    if status == 400:
        return "denied_authz", stage or "request", reason
    if status in TOO_LARGE:
        return "denied_authz", stage or "request", f"request refused as too large (HTTP {status})"
    if status == 421:
        return "denied_authz", stage or "host", f"misdirected request (HTTP 421): {reason}"
    if status in NO_HANDLER and served_by is None:  # nothing served it: no such route/method
        return "denied_authz", stage or "route", f"no handler (HTTP {status})"
    return None


def unmet_expect(served: Served, status: int, headers: Mapping[str, str], body: bytes) -> str:
    """What of the declared evidence the answer does not show ("" when all of it holds)."""
    if served.status is not None and status not in served.status:
        return f"status {status} is not one of {list(served.status)}"
    for name, value in served.header or ():
        got = header(headers, name)
        if got is None:
            return f"no {name} header"
        if value is not None and got != value:
            return f"{name} is not {value!r}"
    if served.body is not None and served.body not in body.decode("utf-8", "replace"):
        return "the body does not contain the declared text"
    if served.json is not None:
        try:
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return "the body is not JSON"
        for pointer, expected in served.json.expected():
            found, value = resolve_pointer(doc, pointer)
            if not found:
                return f"nothing at JSON pointer {pointer!r}"
            if json.dumps(value, sort_keys=True) != json.dumps(expected, sort_keys=True):
                return f"JSON pointer {pointer!r} holds another value"
    return ""


def resolve_pointer(doc: Any, pointer: str) -> tuple[bool, Any]:
    """RFC 6901: (found, value) of `pointer` in `doc`."""
    if pointer == "":
        return True, doc
    current = doc
    for raw in pointer[1:].split("/"):
        step = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(current, dict) and step in current:
            current = current[step]
        elif (
            isinstance(current, list)
            and step.isdigit()
            and (step == "0" or not step.startswith("0"))
            and int(step) < len(current)
        ):
            current = current[int(step)]
        else:
            return False, None
    return True, current
