"""The encrypted audit log under failure, with real processes and sockets: a writer killed with
SIGKILL mid-traffic loses at most its last batch and the log verifies up to there; a full disk (a
tiny tmpfs in a private mount namespace, or an fd that answers ENOSPC) makes the gateway answer
503 for every request after it (fail closed)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from test_gateway import World, call, run, workload_token

from trustproof.audit import FanOutSink
from trustproof.audit.store import EncryptedLogSink
from trustproof.audit.verify import verify

pytestmark = pytest.mark.integration

KEK = bytes(range(32))
BATCH = 16

WRITER = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from trustproof.audit.store import EncryptedLogSink
    sink = EncryptedLogSink(
        Path(sys.argv[1]), bytes(range(32)), batch_records=int(sys.argv[2]),
        checkpoint_every=64, batch_seconds=3600,
    )
    for i in range(200_000):  # bounded; killed long before
        sink.event("probe", {"i": i})
        os.write(1, b"%d\\n" % i)  # acknowledged: the sink took it
    """
)


def test_a_writer_killed_mid_traffic_loses_at_most_one_batch(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(log), str(BATCH)], stdout=subprocess.PIPE
    )
    assert writer.stdout is not None
    acked = -1
    deadline = time.monotonic() + 60
    try:
        while acked < 1000 and time.monotonic() < deadline:
            line = writer.stdout.readline()
            if not line:
                break
            acked = int(line)
    finally:
        os.kill(writer.pid, signal.SIGKILL)
    rest = writer.stdout.read().split()  # what it acknowledged before it died
    writer.wait(10)
    acked = max([acked, *(int(x) for x in rest)])
    assert acked >= 1000, "the writer did not get going"

    result = verify(log.read_bytes(), KEK)
    assert result.problem is not None
    assert result.problem.kind == "truncated"  # never closed: told apart from an intact log
    kept = [r.data["i"] for r in result.contents]
    assert kept == list(range(len(kept)))  # every record written is intact and in order
    lost = (acked + 1) - len(kept)
    # -1: killed after the sink wrote its record, before the writer acknowledged it (it writes
    # one record, then its acknowledgement): at most that one record can be kept unacknowledged.
    assert -1 <= lost <= BATCH, f"{lost} acknowledged records lost (batch {BATCH})"
    assert result.sealed_records <= len(kept)
    assert result.sealed_records >= len(kept) - 64 - BATCH  # the last checkpoint is near


def test_the_twin_a_writer_that_closes_loses_nothing(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    sink = EncryptedLogSink(log, KEK, batch_records=BATCH, checkpoint_every=64)
    for i in range(1001):
        sink.event("probe", {"i": i})
    sink.close()
    result = verify(log.read_bytes(), KEK)
    assert result.ok
    assert [r.data["i"] for r in result.contents] == list(range(1001))


FULL_DISK = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from trustproof.audit import AuditUnavailable
    from trustproof.audit.store import EncryptedLogSink
    sink = EncryptedLogSink(Path(sys.argv[1]), bytes(range(32)), batch_records=8)
    taken = 0
    for i in range(100_000):  # a 64 KiB file system fills long before
        try:
            sink.event("probe", {"i": i, "pad": "x" * 200})
        except AuditUnavailable as exc:
            print("refused after", taken, "|", exc.message)
            break
        taken += 1
    try:
        sink.event("probe", {"i": -1})
    except AuditUnavailable:
        print("still refused")
    sink.close()
    """
)


def private_mounts() -> str | None:
    """Why a private mount namespace cannot be made here (None: it can)."""
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root"
    if shutil.which("unshare") is None:
        return "needs unshare (util-linux)"
    probe = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "true"],
        capture_output=True,
        check=False,
        timeout=30,
    )
    return (
        f"unshare --mount refused here: {probe.stderr.decode()[:100]}" if probe.returncode else None
    )


def test_a_full_file_system_refuses_records_and_the_written_part_verifies(tmp_path: Path) -> None:
    why_not = private_mounts()
    if why_not is not None:
        pytest.skip(why_not)
    mount = tmp_path / "small"
    mount.mkdir()
    script = (
        f"mount -t tmpfs -o size=64k tmpfs {mount} && "
        f"{sys.executable} -c '{FULL_DISK}' {mount}/audit.log && "
        f"cp {mount}/audit.log {tmp_path}/copy.log"
    )
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "refused after" in done.stdout
    assert "No space left on device" in done.stdout
    assert "still refused" in done.stdout
    assert "cannot be written" in done.stderr  # the run's log says so
    assert not any(mount.iterdir())  # the tmpfs was only ever in the private namespace
    result = verify((tmp_path / "copy.log").read_bytes(), KEK)
    assert result.problem is not None
    assert result.problem.kind == "truncated"
    taken = int(done.stdout.split("refused after", 1)[1].split("|", 1)[0])
    assert 0 < len(result.contents) <= taken


def test_an_audit_log_that_answers_enospc_makes_the_gateway_answer_503(
    shop_spec_path: Path, tmp_path: Path
) -> None:
    log = tmp_path / "audit.log"

    async def scenario(w: World) -> None:
        sink = EncryptedLogSink(log, KEK, batch_records=1)
        w.gateway.sink = FanOutSink(sink, w.sink)  # as the sandbox wires it
        token = await workload_token(w, w.storefront)
        status, body, _ = await call(w, "GET", "/orders/1", svid=w.storefront, token=token)
        assert status == 200, body  # the twin: with a disk that takes it, answered
        full = os.open("/dev/full", os.O_WRONLY)
        os.dup2(full, sink._fd)  # every later write: ENOSPC
        os.close(full)
        for _ in range(3):
            status, body, _ = await call(w, "GET", "/orders/1", svid=w.storefront, token=token)
            assert (status, body["reason"]) == (503, "audit-unavailable")
        assert len(w.upstream_hits) == 1  # nothing forwarded without its audit record
        assert sink.failure is not None
        assert "No space left on device" in sink.failure

    run(shop_spec_path, scenario)
