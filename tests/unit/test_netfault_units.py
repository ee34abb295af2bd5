"""The isolated backend's network-fault pieces that need no namespace: the nftables fault table,
the ``tc netem`` commands, netem detection (what `trustproof doctor` says), and the egress
proxy's upstream moved to a fault port and back."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from trustproof.cli import doctor
from trustproof.errors import SandboxError
from trustproof.sandbox import firewall, netem


def test_the_reset_table_rejects_only_the_links_port_with_a_tcp_reset() -> None:
    text = firewall.fault_ruleset(40123, "reset")
    assert "table inet trustproof-fault-40123 {" in text
    assert "delete table inet trustproof-fault-40123" in text  # replaced, never stacked
    assert 'oif "lo" ip daddr 127.0.0.1 tcp dport 40123 reject with tcp reset' in text
    assert "priority -10; policy accept;" in text  # ahead of the service's own ruleset
    assert "drop" not in text


def test_the_loss_table_drops_a_share_of_the_opening_syns() -> None:
    text = firewall.fault_ruleset(40123, "loss", 30)
    assert "tcp flags & (syn | ack) == syn numgen random mod 100 < 30 drop" in text
    every = firewall.fault_ruleset(40123, "loss", 100)  # nft takes < 0..99 only
    assert "tcp flags & (syn | ack) == syn drop" in every
    assert "numgen" not in every


def test_a_bad_port_is_refused() -> None:
    with pytest.raises(ValueError, match="bad port 0"):
        firewall.fault_ruleset(0, "reset")


def test_netem_delays_only_the_links_port_both_ways() -> None:
    commands = netem.netem_commands(40123, 0.2)
    assert commands[0][:6] == ["qdisc", "add", "dev", "lo", "root", "handle"]
    assert commands[1][-3:] == ["netem", "delay", "200ms"]
    matches = [c[c.index("match") : c.index("flowid")] for c in commands[2:]]
    assert matches == [
        ["match", "ip", "dport", "40123", "0xffff"],
        ["match", "ip", "sport", "40123", "0xffff"],
    ]
    assert all(c[-1] == "1:4" for c in commands[2:])  # the netem band, nothing else there


def test_without_sch_netem_the_status_says_so_and_what_is_used_instead(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def unknown(args: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        assert args[1] == "--net"
        assert args[3:5] == ["qdisc", "add"]
        return subprocess.CompletedProcess(args, 2, "", "Error: Specified qdisc kind is unknown.\n")

    monkeypatch.setattr(netem.os, "geteuid", lambda: 0)
    monkeypatch.setattr(netem.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(netem.subprocess, "run", unknown)
    ok, found = netem.netem_status()
    assert not ok
    assert found.startswith("tc netem: Error: Specified qdisc kind is unknown.")
    assert "uses a relay instead (loss and resets: nftables)" in found


def test_with_netem_the_status_says_it_was_tried(monkeypatch: pytest.MonkeyPatch) -> None:
    def works(args: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(args, 0, "", "")

    monkeypatch.setattr(netem.os, "geteuid", lambda: 0)
    monkeypatch.setattr(netem.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(netem.subprocess, "run", works)
    assert netem.netem_status() == (
        True,
        "tc netem and prio work (tried in a throwaway network namespace)",
    )


def failing_tc(fails: str, calls: list[list[str]]) -> Any:
    def tc(ns: str, args: list[str], what: str) -> None:
        calls.append(args)
        if fails in args:
            raise SandboxError(f"{what}: tc failed: Error: Specified qdisc kind is unknown.")

    return tc


def test_adding_netem_names_what_the_kernel_lacks_and_leaves_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[list[str]] = []
    monkeypatch.setattr(netem, "_tc", failing_tc("netem", calls))
    why = netem.add_netem("tp-00000000-a", 40123, 0.05)
    assert why == "tc netem: Error: Specified qdisc kind is unknown."
    assert calls == [netem.QDISCS["netem"]]  # tried alone first: nothing else was added
    calls.clear()
    monkeypatch.setattr(netem, "_tc", failing_tc("prio", calls))
    why = netem.add_netem("tp-00000000-a", 40123, 0.05)
    assert (
        why == "tc prio (to keep netem to the link's port): Error: Specified qdisc kind is unknown."
    )
    assert calls[-1] == netem.NETEM_TEARDOWN  # the half-made qdiscs removed


def test_with_netem_and_prio_every_command_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []
    monkeypatch.setattr(netem, "_tc", failing_tc("nothing fails", calls))
    assert netem.add_netem("tp-00000000-a", 40123, 0.05) is None
    assert calls == [
        netem.QDISCS["netem"],
        netem.NETEM_TEARDOWN,
        *netem.netem_commands(40123, 0.05),
    ]


def test_doctor_reports_netem_without_requiring_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(netem, "netem_status", lambda: (False, "no sch_netem"))
    by_name = {c.name: c for c in doctor.checks(None)}
    check = by_name["tc netem (network-fault, isolated backend)"]
    assert (check.ok, check.found, check.needed) == (False, "no sch_netem", False)
