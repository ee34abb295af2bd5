"""Audit sink cost per record: what the removed-or-replaced check (one `stat` of the path before
each write) adds, measured against a reference in the same run on the same machine:

* JSON-lines record, checked     the sink as gateways use it
* JSON-lines record, unchecked   reference: the same sink with the check taken out (what it
                                 cost before the check existed)
* the check alone                one `os.stat(path, follow_symlinks=False)` + the comparison

Run: `.venv/bin/python benchmarks/audit.py [--json FILE]`. Loops are bounded in count and time;
files go to a temporary directory that is removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from _measure import micros

from trustproof.audit import AuditEvent, JsonLinesSink, Timings, file_problem


class _Unchecked(JsonLinesSink):
    """The reference: the sink without its file check."""

    def _check(self) -> None:
        return None


def event(i: int) -> AuditEvent:
    return AuditEvent(
        request_id=f"{i:032x}",
        time="2030-01-01T00:00:00+00:00",
        service="orders",
        method="GET",
        path="/orders/1",
        route="GET /orders/{id}",
        peer_spiffe_id="spiffe://bench.test/storefront",
        token_subject="spiffe://bench.test/storefront",  # noqa: S106 (a SPIFFE ID)
        principal="storefront",
        allowed=True,
        status=200,
        stage="policy",
        reason="allowed-by-policy",
        policy_ids=("storefront-reads-orders",),
        timings=Timings(token_us=12.0, policy_us=30.0),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()

    events = [event(i) for i in range(2000)]
    with tempfile.TemporaryDirectory(prefix="trustproof-bench-audit-") as tmp:
        checked = JsonLinesSink(Path(tmp) / "checked.jsonl")
        unchecked = _Unchecked(Path(tmp) / "unchecked.jsonl")
        opened = os.stat(checked.path)
        identity = (opened.st_dev, opened.st_ino)
        # Interleaved rounds, so that drift on a shared machine hits both alike.
        ours, reference, alone = [], [], []
        for _ in range(3):
            ours.append(micros(lambda i: checked.record(events[i % len(events)])))
            reference.append(micros(lambda i: unchecked.record(events[i % len(events)])))
            alone.append(
                micros(
                    lambda _: file_problem(identity, os.stat(checked.path, follow_symlinks=False))
                )
            )
        checked.close()
        unchecked.close()

    results = {
        "record, checked": min(ours),
        "record, unchecked (reference)": min(reference),
        "the check alone": min(alone),
    }
    print(f"{'figure':34} {'median':>10}")
    for name, value in results.items():
        print(f"{name:34} {value:>7.2f} µs")
    added = results["record, checked"] - results["record, unchecked (reference)"]
    print(f"added by the check: {added:+.2f} µs per record ({added / min(reference):+.0%})")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
