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
    in the tool's own words (``tc netem: Error: Specified qdisc kind is unknown.`` on a kernel
    without ``sch_netem``) — nothing is left behind. netem alone is tried first, so the answer
    names what is missing: netem, or the ``prio`` qdisc that keeps it to the link's port."""
    try:
        _tc(ns, QDISCS["netem"], f"cannot add netem in {ns}")
    except SandboxError as exc:
        return f"tc netem: {_said(exc)}"
    remove_netem(ns)
    try:
        for args in netem_commands(port, latency_s):
            _tc(ns, args, f"cannot add netem in {ns}")
    except SandboxError as exc:
        remove_netem(ns)
        kind = next((word for word in ("prio", "netem", "u32") if word in args), args[0])
        return f"tc {kind} (to keep netem to the link's port): {_said(exc)}"
    return None


def _said(exc: SandboxError) -> str:
    return exc.message.split("failed: ", 1)[-1]


def remove_netem(ns: str) -> None:
    """Delete the root qdisc of ``lo`` in `ns` (quiet when there is none)."""
    with contextlib.suppress(SandboxError):
        _tc(ns, NETEM_TEARDOWN, f"cannot remove netem in {ns}")


QDISCS = {  # what the latency fault needs, each tried alone (root qdisc on lo)
    "netem": ["qdisc", "add", "dev", "lo", "root", "handle", "1:", "netem", "delay", "1ms"],
    "prio": ["qdisc", "add", "dev", "lo", "root", "handle", "1:", "prio", "bands", "4"],
}


def netem_status() -> tuple[bool, str]:
    """Can the latency fault use ``tc netem`` here (netem and the ``prio`` qdisc)? Tried in a
    throwaway network namespace when root; else read from the kernel's modules (said so)."""
    tc, unshare = tc_tool(), shutil.which("unshare")
    if tc is None:
        return False, "iproute2's tc not found"
    if os.geteuid() != 0 or unshare is None:
        return _netem_from_modules()
    for kind, args in QDISCS.items():
        try:
            done = subprocess.run(
                [unshare, "--net", tc, *args],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return False, f"could not try tc {kind}: {exc}"
        if done.returncode != 0:
            said = (done.stderr or done.stdout).strip().splitlines()
            return False, (
                f"tc {kind}: {said[-1] if said else 'failed'} — network-fault latency on the "
                "isolated backend uses a relay instead (loss and resets: nftables)"
            )
    return True, "tc netem and prio work (tried in a throwaway network namespace)"


def _netem_from_modules() -> tuple[bool, str]:
    modules = Path("/lib/modules") / os.uname().release
    builtin = modules / "modules.builtin"
    built = builtin.read_text(errors="replace") if builtin.is_file() else ""
    for name in ("sch_netem", "sch_prio"):
        if not (
            Path("/sys/module", name).exists()
            or name in built
            or any((modules / "kernel/net/sched").glob(f"{name}.ko*"))
        ):
            return False, f"no {name} in this kernel (not tried: not root) — a relay instead"
    return True, "sch_netem and sch_prio are in this kernel (not tried: not root)"
