"""Audit sinks: merged decisions and completions in memory, scrubbed JSON lines on disk."""

from __future__ import annotations

import json
import logging
import os
import stat
from dataclasses import asdict
from pathlib import Path

import pytest

from trustproof.audit import (
    AuditCompletion,
    AuditEvent,
    AuditUnavailable,
    FanOutSink,
    JsonLinesSink,
    MemorySink,
    Timings,
    file_problem,
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
    full["stripped_headers"] = list(full["stripped_headers"])
    assert event().to_json() == full


def test_an_existing_audit_file_is_set_back_to_0600(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_text("")
    path.chmod(0o644)
    JsonLinesSink(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_symlink_in_place_of_the_audit_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").write_text("")
    (tmp_path / "audit.jsonl").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(OSError, match="symbolic links"):  # ELOOP from O_NOFOLLOW
        JsonLinesSink(tmp_path / "audit.jsonl")


def test_a_removed_audit_file_fails_closed_for_good(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "audit.jsonl"
    sink = JsonLinesSink(path)
    sink.record(event("r1"))
    path.unlink()
    with pytest.raises(AuditUnavailable, match="was removed"):
        sink.record(event("r2"))
    with pytest.raises(AuditUnavailable):
        sink.complete(AuditCompletion("r1", 200, 1.0, 2.0))
    path.write_text("")  # a new file at the path does not bring the lost records back
    with pytest.raises(AuditUnavailable, match="was removed"):
        sink.record(event("r3"))
    assert sink.failure is not None
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1  # said once, not once per refused request
    assert "fail closed" in errors[0].getMessage()
    sink.close()


def test_the_working_sink_twin_keeps_writing(tmp_path: Path) -> None:
    """The twin of the test above: with the file in place every record is written."""
    path = tmp_path / "audit.jsonl"
    sink = JsonLinesSink(path)
    for i in range(3):
        sink.record(event(f"r{i}"))
    sink.close()
    assert sink.failure is None
    assert len(path.read_text().splitlines()) == 3


@pytest.mark.parametrize("how", ["rename-over", "symlink"])
def test_a_replaced_audit_file_fails_closed(tmp_path: Path, how: str) -> None:
    path = tmp_path / "audit.jsonl"
    sink = JsonLinesSink(path)
    sink.record(event("r1"))
    other = tmp_path / "other.jsonl"
    other.write_text("")
    if how == "rename-over":
        os.replace(other, path)
    else:
        path.unlink()
        path.symlink_to(other)
    with pytest.raises(AuditUnavailable, match="was replaced"):
        sink.record(event("r2"))
    assert path.read_text() == ""  # nothing went to the impostor either
    sink.close()


def test_file_problem_compares_device_and_inode(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_text("")
    st = path.stat()
    assert file_problem((st.st_dev, st.st_ino), st) is None
    assert file_problem((st.st_dev, st.st_ino + 1), st) == "replaced"
    assert file_problem((st.st_dev + 1, st.st_ino), st) == "replaced"
    assert file_problem((st.st_dev, st.st_ino), None) == "removed"
