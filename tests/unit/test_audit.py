"""Audit sinks: merged decisions and completions in memory, scrubbed JSON lines on disk."""

from __future__ import annotations

import json
import stat
from dataclasses import asdict
from pathlib import Path

from trustproof.audit import (
    AuditCompletion,
    AuditEvent,
    FanOutSink,
    JsonLinesSink,
    MemorySink,
    Timings,
)

JWT = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"


def event(request_id: str = "r1", allowed: bool = True, path: str = "/orders/1") -> AuditEvent:
    return AuditEvent(
        request_id=request_id,
        time="2030-01-01T00:00:00+00:00",
        service="orders",
        method="GET",
        path=path,
        route="GET /orders/{id}",
        peer_spiffe_id="spiffe://shop.test/storefront",
        token_subject="spiffe://shop.test/storefront",
        principal="storefront",
        allowed=allowed,
        status=200 if allowed else 403,
        stage="policy",
        reason="allowed-by-policy",
        policy_ids=("storefront-reads-orders",),
        timings=Timings(token_us=12.0, policy_us=30.0),
    )


def test_memory_sink_merges_the_completion() -> None:
    sink = MemorySink()
    sink.record(event())
    sink.complete(AuditCompletion("r1", 201, upstream_us=400.0, total_us=500.0))
    merged = sink.get("r1")
    assert merged is not None
    assert (merged.status, merged.stage) == (201, "done")
    assert merged.timings.token_us == 12.0
    assert merged.timings.upstream_us == 400.0
    assert sink.get("r2") is None


def test_memory_sink_is_bounded() -> None:
    sink = MemorySink(limit=3)
    for i in range(5):
        sink.record(event(f"r{i}"))
    assert [e.request_id for e in sink.events()] == ["r2", "r3", "r4"]


def test_json_lines_are_private_and_scrubbed(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    sink = JsonLinesSink(path)
    sink.record(event(path=f"/orders/1?token={JWT}"))
    sink.complete(AuditCompletion("r1", 200, 1.0, 2.0))
    sink.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["kind"] for line in lines] == ["decision", "completion"]
    assert lines[0]["policy_ids"] == ["storefront-reads-orders"]
    assert JWT not in path.read_text()


def test_fan_out_reaches_every_sink() -> None:
    first, second = MemorySink(), MemorySink()
    FanOutSink(first, second).record(event())
    assert first.get("r1") == second.get("r1") == event()


def test_hand_written_json_matches_every_field() -> None:
    """to_json is written out for speed; it must still carry every field of the event."""
    full = asdict(event())
    full["policy_ids"] = list(full["policy_ids"])
    assert event().to_json() == full
