"""Audit log cost, measured against references in the same run on the same machine:

* encrypted log, record       `EncryptedLogSink.record` as gateways use it: scrubbed JSON,
                              AES-256-GCM, SHA-256 chain, batched writes (64 records), a signed
                              and fsync-ed checkpoint every 256 records
* encrypted log, batch 1      the same with `audit: {batch_records: 1}`: every record written
                              (one ``write``, not fsync-ed) before `record` returns, so a gateway
                              forwards no request whose decision is not in the file and a write
                              that fails refuses that very request
* encrypted log, core only    `LogWriter.append`: the same without any file I/O
* plaintext JSON lines        reference: `JsonLinesSink.record` (scrubbed JSON, one line-buffered
                              write per record, no encryption): what the sandbox wrote before
* JSON + scrub alone          reference: the serialisation both share
* verify + decrypt            `verify` over the encrypted log written above, per record
* kill -9 loss                records a writer had handed to the sink but that were not in the
                              file after SIGKILL (3 trials; the bound is one batch)
* service log, encrypted      lines/s through the sandbox's log pump (`backend._pump`: scrub per
                              line) into `ServiceLogSink` (16 KiB chunks, AES-256-GCM, chained,
                              checkpointed), closed at the end
* service log, plain          reference: the same pump into a 0600 file, one write and flush per
                              line: what the sandbox did before service logs were encrypted

Run: `.venv/bin/python benchmarks/audit.py [--json FILE]`. Loops are bounded in count and time;
files go to a temporary directory that is removed afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _measure import per_second

from trustproof.audit import AuditEvent, JsonLinesSink, Timings
from trustproof.audit.servicelog import ServiceLogSink
from trustproof.audit.store import EncryptedLogSink
from trustproof.audit.verify import verify
from trustproof.audit.writer import LogWriter, plaintext
from trustproof.sandbox.backend import _pump
from trustproof.sandbox.rundir import open_private_log

KEK = bytes(range(32))
BATCH = 64
WRITER = """
import os, sys
from pathlib import Path
from trustproof.audit.store import EncryptedLogSink
sink = EncryptedLogSink(Path(sys.argv[1]), bytes(range(32)), batch_records=int(sys.argv[2]))
for i in range(200_000):
    sink.event("probe", {"i": i})
    os.write(1, b"%d\\n" % i)
"""


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


LOG_LINES = 50_000
LOG_LINE = "orders GET /orders/{i} 200 caller=spiffe://bench.test/storefront took={i}us\n"


class PlainLog:
    """The reference: the pump's writes as they were before (one write and flush per line)."""

    def __init__(self, path: Path) -> None:
        self._file = open_private_log(path)

    def write(self, text: str) -> None:
        self._file.write(text.encode())
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def pump_rate(log: ServiceLogSink | PlainLog) -> float:
    """Lines per second through the log pump into `log` (fed 64 KiB at a time, as a pipe
    would; `LOG_LINES` lines, the close included)."""
    blob = "".join(LOG_LINE.format(i=i) for i in range(LOG_LINES)).encode()

    async def run() -> float:
        reader = asyncio.StreamReader(limit=2**16)
        start = time.perf_counter()
        task = asyncio.create_task(_pump(reader, log))  # type: ignore[arg-type]
        for offset in range(0, len(blob), 65536):
            reader.feed_data(blob[offset : offset + 65536])
            await asyncio.sleep(0)
        reader.feed_eof()
        await task
        log.close()
        return LOG_LINES / (time.perf_counter() - start)

    return asyncio.run(run())


def kill_loss(directory: Path, trial: int) -> int:
    """Acknowledged records missing from the file after a SIGKILL mid-traffic."""
    log = directory / f"killed-{trial}.log"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(log), str(BATCH)], stdout=subprocess.PIPE
    )
    assert writer.stdout is not None
    acked, deadline = -1, time.monotonic() + 30
    try:
        while acked < 2000 + 37 * trial and time.monotonic() < deadline:
            line = writer.stdout.readline()
            if not line:
                break
            acked = int(line)
    finally:
        os.kill(writer.pid, signal.SIGKILL)
    acked = max([acked, *(int(x) for x in writer.stdout.read().split())])
    writer.wait(10)
    kept = len(verify(log.read_bytes(), KEK).contents)
    return acked + 1 - kept


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()

    events = [event(i) for i in range(2000)]
    records = [{"kind": "decision", **e.to_json()} for e in events]
    with tempfile.TemporaryDirectory(prefix="trustproof-bench-audit-") as tmp:
        directory = Path(tmp)
        encrypted = EncryptedLogSink(directory / "audit.log", KEK)
        write_through = EncryptedLogSink(directory / "audit-1.log", KEK, batch_records=1)
        plain = JsonLinesSink(directory / "audit.jsonl")
        core = LogWriter(KEK)
        rounds: dict[str, list[float]] = {
            "encrypted log, record": [],
            "encrypted log, batch 1": [],
            "encrypted log, core only": [],
            "plaintext JSON lines (reference)": [],
            "JSON + scrub alone (reference)": [],
        }
        for _ in range(3):  # interleaved, so that drift on a shared machine hits all alike
            rate, _n = per_second(lambda i: encrypted.record(events[i % 2000]))
            rounds["encrypted log, record"].append(rate)
            rate, _n = per_second(lambda i: write_through.record(events[i % 2000]))
            rounds["encrypted log, batch 1"].append(rate)
            rate, _n = per_second(lambda i: core.append(records[i % 2000]))
            rounds["encrypted log, core only"].append(rate)
            rate, _n = per_second(lambda i: plain.record(events[i % 2000]))
            rounds["plaintext JSON lines (reference)"].append(rate)
            rate, _n = per_second(lambda i: plaintext(records[i % 2000]))
            rounds["JSON + scrub alone (reference)"].append(rate)
        encrypted.close()
        write_through.close()
        plain.close()
        data = (directory / "audit.log").read_bytes()
        start = time.perf_counter()
        result = verify(data, KEK)
        verify_rate = result.records / (time.perf_counter() - start)
        assert result.ok, result.problem
        losses = [kill_loss(directory, trial) for trial in range(3)]
        lines: dict[str, list[float]] = {"service log, encrypted": [], "service log, plain": []}
        for trial in range(3):  # interleaved as above
            encrypted_log = ServiceLogSink(directory / f"s{trial}.log.tpa", KEK)
            lines["service log, encrypted"].append(pump_rate(encrypted_log))
            lines["service log, plain"].append(pump_rate(PlainLog(directory / f"s{trial}.log")))
        check = verify((directory / "s0.log.tpa").read_bytes(), KEK)
        assert check.ok, check.problem
        assert sum(len(r.data["text"]) for r in check.contents) > LOG_LINES * 60

    figures: dict[str, float] = {name: max(values) for name, values in rounds.items()}
    figures["verify + decrypt"] = verify_rate
    print(f"{'figure':36} {'records/s':>12} {'µs/record':>10}")
    for name, rate in figures.items():
        print(f"{name:36} {rate:>12,.0f} {1e6 / rate:>10.1f}")
    ratio = figures["encrypted log, record"] / figures["plaintext JSON lines (reference)"]
    print(f"encrypted / plaintext records per second: {ratio:.2f}x")
    one = figures["encrypted log, batch 1"] / figures["encrypted log, record"]
    added = 1e6 / figures["encrypted log, batch 1"] - 1e6 / figures["encrypted log, record"]
    print(f"batch 1 / batch {BATCH} records per second: {one:.2f}x ({added:+.1f} µs a record)")
    print(f"kill -9 loss (records acknowledged, not in the file; batch {BATCH}): {losses}")
    line_rates = {name: max(values) for name, values in lines.items()}
    print(f"{'service logs (log pump)':36} {'lines/s':>12} {'µs/line':>10}")
    for name, rate in line_rates.items():
        print(f"{name:36} {rate:>12,.0f} {1e6 / rate:>10.1f}")
    log_ratio = line_rates["service log, encrypted"] / line_rates["service log, plain"]
    print(f"service log encrypted / plain lines per second: {log_ratio:.2f}x")
    if args.json:
        args.json.write_text(
            json.dumps({**figures, **line_rates, "kill_loss": losses, "batch": BATCH}, indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
