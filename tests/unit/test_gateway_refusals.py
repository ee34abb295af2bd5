"""The bounded log of parser refusals: one line at the first, then at most one per interval."""

from __future__ import annotations

from trustproof.gateway.refusals import MAX_KINDS_SHOWN, RefusalSummary


def test_the_first_refusal_is_said_at_once() -> None:
    summary = RefusalSummary("gateway of orders", interval=10.0)
    line = summary.note("BadStatusLine", now=100.0)
    assert line is not None
    assert line.startswith("gateway of orders: 1 malformed request refused by the HTTP parser")
    assert "BadStatusLine x1" in line


def test_a_flood_gives_one_line_per_interval_and_loses_no_count() -> None:
    summary = RefusalSummary("gateway of orders", interval=10.0)
    lines = []
    for i in range(10_000):  # 10,000 refusals over 50 s
        line = summary.note("LineTooLong" if i % 2 else "BadStatusLine", now=i * 0.005)
        if line:
            lines.append(line)
    final = summary.flush(now=50.0)
    assert final is not None
    lines.append(final)
    assert len(lines) <= 50 / 10 + 2
    counts = [int(line.split(": ", 1)[1].split(" ", 1)[0]) for line in lines]
    assert sum(counts) == summary.total == 10_000
    assert all(len(line) < 300 for line in lines)


def test_an_unbounded_twin_would_say_every_refusal() -> None:
    """The twin: with no interval every refusal is a line (what the bound prevents)."""
    summary = RefusalSummary("gateway of orders", interval=0.0)
    assert all(summary.note("BadStatusLine", now=float(i)) for i in range(100))


def test_nothing_pending_flushes_nothing() -> None:
    summary = RefusalSummary("gateway")
    assert summary.flush(now=1.0) is None
    summary.note("BadStatusLine", now=1.0)
    assert summary.flush(now=2.0) is None  # already said


def test_many_kinds_are_cut_short() -> None:
    summary = RefusalSummary("gateway", interval=1000.0)
    summary.note("K0", now=0.0)
    for i in range(20):
        summary.note(f"K{i}", now=1.0)
    line = summary.flush(now=2.0)
    assert line is not None
    assert line.count(" x") == MAX_KINDS_SHOWN
    assert ", …" in line
