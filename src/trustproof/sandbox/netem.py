"""``tc netem`` inside a network namespace, for the isolated backend's network faults
(`trustproof.sandbox.netfault`): the commands (pure), adding and removing them, and whether this
kernel has netem at all (``trustproof doctor``). Kernels without ``sch_netem`` answer
``Specified qdisc kind is unknown``; the caller then uses nftables and a relay instead.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

from trustproof.errors import SandboxError
from trustproof.sandbox.netns import run_ip

NETEM_BAND = 4  # a prio band of its own: the default priomap sends nothing else there


def tc_tool() -> str | None:
    """The path of iproute2's ``tc``, or None."""
    return shutil.which("tc") or next(
        (p for p in ("/usr/sbin/tc", "/sbin/tc") if os.access(p, os.X_OK)), None
    )


def netem_commands(port: int, latency_s: float) -> list[list[str]]:
    """``tc`` argument lists delaying every packet to or from loopback port `port` by
    `latency_s` on ``lo`` (both ways: the request and the answer each cross it), and nothing
    else."""
    delay = f"{max(1, round(latency_s * 1000))}ms"
    band = f"1:{NETEM_BAND}"
    filters = [
        ["filter", "add", "dev", "lo", "parent", "1:", "protocol", "ip", "prio", "1", "u32",
         "match", "ip", direction, str(port), "0xffff", "flowid", band]
        for direction in ("dport", "sport")
    ]  # fmt: skip
    return [
        ["qdisc", "add", "dev", "lo", "root", "handle", "1:", "prio", "bands", str(NETEM_BAND)],
        ["qdisc", "add", "dev", "lo", "parent", band, "handle", "40:", "netem", "delay", delay],
        *filters,
    ]


NETEM_TEARDOWN = ["qdisc", "del", "dev", "lo", "root"]


def _tc(ns: str, args: list[str], what: str) -> None:
    tc = tc_tool()
    if tc is None:
        raise SandboxError(f"{what}: iproute2's `tc` is not installed", "apt-get install iproute2")
    run_ip(["netns", "exec", ns, tc, *args], what=what, tool_name="tc", hint="(netem)")


def add_netem(ns: str, port: int, latency_s: float) -> str | None:
    """Delay loopback port `port` in namespace `ns` with netem; None when done, else why not
    (the tool's own words: e.g. the kernel has no ``sch_netem``) — nothing is left behind."""
    try:
        for args in netem_commands(port, latency_s):
            _tc(ns, args, f"cannot add netem in {ns}")
    except SandboxError as exc:
        remove_netem(ns)
        return exc.message.split("failed: ", 1)[-1]
    return None


def remove_netem(ns: str) -> None:
    """Delete the root qdisc of ``lo`` in `ns` (quiet when there is none)."""
    with contextlib.suppress(SandboxError):
        _tc(ns, NETEM_TEARDOWN, f"cannot remove netem in {ns}")


def netem_status() -> tuple[bool, str]:
    """Can ``tc netem`` run here? Tried in a throwaway network namespace when root; else read
    from the kernel's modules (a guess, said so)."""
    tc, unshare = tc_tool(), shutil.which("unshare")
    if tc is None:
        return False, "iproute2's tc not found"
    if os.geteuid() != 0 or unshare is None:
        return _netem_from_modules()
    args = [unshare, "--net", tc, "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"]
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"could not try: {exc}"
    if done.returncode == 0:
        return True, "tc netem works (tried in a throwaway network namespace)"
    said = (done.stderr or done.stdout).strip().splitlines()
    return False, (
        f"{said[-1] if said else 'tc failed'} — network-fault on the isolated backend uses "
        "nftables and a relay instead"
    )


def _netem_from_modules() -> tuple[bool, str]:
    release = os.uname().release
    modules = Path("/lib/modules") / release
    if Path("/sys/module/sch_netem").exists():
        return True, "sch_netem is loaded (not tried: not root)"
    builtin = modules / "modules.builtin"
    if builtin.is_file() and "sch_netem" in builtin.read_text(errors="replace"):
        return True, "sch_netem is built into the kernel (not tried: not root)"
    if any((modules / "kernel/net/sched").glob("sch_netem.ko*")):
        return True, "sch_netem is a loadable module (not tried: not root)"
    return False, "no sch_netem in this kernel (not tried: not root) — nftables and a relay instead"
