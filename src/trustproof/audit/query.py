"""Choosing records of a decrypted audit log (`trustproof audit show`), no I/O."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

Decision = Literal["allowed", "denied"]


def caller_of(record: Mapping[str, Any]) -> str:
    """Who acted: the decision's principal or verified identity, a token call's client."""
    for key in ("principal", "token_subject", "peer_spiffe_id", "client", "subject"):
        value = record.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def _time(text: object) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class Filter:
    service: str | None = None
    caller: str | None = None  # a name, a SPIFFE ID, or a glob of either
    decision: Decision | None = None
    case: str | None = None  # a case id or glob (probe records, and the decisions they made)
    kind: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def matches(self, record: Mapping[str, Any]) -> bool:
        return all(
            (
                self.kind is None or fnmatch.fnmatchcase(str(record.get("kind", "")), self.kind),
                self.service is None or record.get("service") == self.service,
                self.caller is None or self._caller(record),
                self.decision is None or self._decision(record),
                self.case is None or fnmatch.fnmatchcase(str(record.get("case", "")), self.case),
                self._in_time(record),
            )
        )

    def _caller(self, record: Mapping[str, Any]) -> bool:
        assert self.caller is not None  # noqa: S101 (checked by the caller)
        who = caller_of(record)
        short = who.rsplit("/", 1)[-1] if who.startswith("spiffe://") else who
        return fnmatch.fnmatchcase(who, self.caller) or fnmatch.fnmatchcase(short, self.caller)

    def _decision(self, record: Mapping[str, Any]) -> bool:
        if record.get("kind") != "decision":
            return False
        return bool(record.get("allowed")) == (self.decision == "allowed")

    def _in_time(self, record: Mapping[str, Any]) -> bool:
        if self.since is None and self.until is None:
            return True
        when = _time(record.get("time"))
        if when is None:
            return False
        return (self.since is None or when >= self.since) and (
            self.until is None or when <= self.until
        )


def select(records: Iterable[Mapping[str, Any]], chosen: Filter) -> list[Mapping[str, Any]]:
    return [record for record in records if chosen.matches(record)]
