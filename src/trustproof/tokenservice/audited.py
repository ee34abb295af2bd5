"""What the token service writes into the run's audit log: one record per token-endpoint call
(issue, revoke, introspect, admin mint) with who asked, for what, and the answer — never a token.

`TokenService.audit` is the callback (the sandbox gives its durable log's); when it refuses, the
call is answered 503 and nothing is handed out (fail closed)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from trustproof.tokenservice.core import Client, Reply, oauth_error

AuditCallback = Callable[[str, Mapping[str, Any]], None]

KINDS = {
    "token": "token.issue",
    "revoke": "token.revoke",
    "introspect": "token.introspect",
    "mint": "token.admin-mint",
}


def record_of(
    handler: str, values: Mapping[str, Any], client: Client | None, reply: Reply
) -> tuple[str, dict[str, Any]]:
    """The audit kind and fields of one call (`handler`: the `TokenService` method's name)."""
    body = reply.body if isinstance(reply.body, Mapping) else {}
    fields: dict[str, Any] = {
        "client": client.spiffe_id if client is not None else None,
        "status": reply.status,
        "error": body.get("error"),
    }
    for key in ("audience", "resource", "subject", "grant_type"):
        value = values.get(key)
        if isinstance(value, str):
            fields[key] = value[:200]
    if handler == "introspect" and reply.status == 200:
        fields["active"] = bool(body.get("active"))
    return KINDS.get(handler, f"token.{handler}"), fields


def audited(
    audit: AuditCallback | None,
    handler: str,
    values: Mapping[str, Any],
    client: Client | None,
    reply: Reply,
) -> Reply:
    """`reply`, once the call is recorded; a 503 handing nothing out when it cannot be."""
    if audit is None:
        return reply
    kind, fields = record_of(handler, values, client, reply)
    try:
        audit(kind, fields)
    except Exception:
        return oauth_error(
            503, "temporarily_unavailable", "the audit log cannot be written; nothing was issued"
        )
    return reply
