"""What the token service writes into the audit log: who asked for what and the answer, never
the token; and a log that refuses the record makes the call a 503 that hands nothing out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trustproof.tokenservice.audited import audited, record_of
from trustproof.tokenservice.core import Client, Reply

TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
CLIENT = Client("spiffe://shop.test/storefront", "thumb")


def test_an_issue_is_recorded_without_the_token() -> None:
    reply = Reply(200, {"access_token": TOKEN, "token_type": "Bearer"})
    kind, fields = record_of("token", {"audience": "orders", "grant_type": "x"}, CLIENT, reply)
    assert kind == "token.issue"
    assert fields["client"] == CLIENT.spiffe_id
    assert (fields["status"], fields["audience"]) == (200, "orders")
    assert TOKEN not in repr(fields)


def test_a_revocation_does_not_record_the_revoked_token() -> None:
    kind, fields = record_of("revoke", {"token": TOKEN}, CLIENT, Reply(200, {}))
    assert kind == "token.revoke"
    assert TOKEN not in repr(fields)


def test_a_refusing_log_turns_the_answer_into_a_503_without_the_token() -> None:
    def refuse(kind: str, fields: Mapping[str, Any]) -> None:
        raise OSError("disk full")

    reply = Reply(200, {"access_token": TOKEN})
    answer = audited(refuse, "mint", {"subject": "alice"}, CLIENT, reply)
    assert answer.status == 503
    assert TOKEN not in repr(answer.body)
    seen: list[tuple[str, Mapping[str, Any]]] = []
    kept = audited(lambda k, f: seen.append((k, f)), "mint", {}, CLIENT, reply)
    assert kept is reply  # the twin: a log that takes it changes nothing
    assert seen[0][0] == "token.admin-mint"
