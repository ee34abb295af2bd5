"""The namespace firewall's ruleset text and the drop counts read back (no nft, no sockets)."""

from __future__ import annotations

import json
import re

import pytest

from trustproof.errors import SandboxError
from trustproof.sandbox.firewall import DropCount, parse_drops, ruleset


def chain(text: str, name: str) -> list[str]:
    """The statement lines of one chain of the ruleset."""
    match = re.search(rf"chain {name} \{{\n(.*?)\n  \}}", text, re.S)
    assert match is not None, f"no chain {name}"
    return [line.strip() for line in match.group(1).splitlines() if line.strip()]


def test_every_hook_drops_by_default() -> None:
    text = ruleset()
    for name, hook in (("output", "output"), ("forward", "forward"), ("input", "input")):
        assert chain(text, name)[0] == f"type filter hook {hook} priority 0; policy drop;"


def test_only_loopback_is_accepted() -> None:
    text = ruleset()
    accepts = [line for line in text.splitlines() if "accept" in line]
    assert [line.strip() for line in accepts] == [
        'oif "lo" accept',  # output
        'oif "lo" accept',  # forward
        'iif "lo" accept',  # input
    ]
    assert chain(text, "output")[1:] == ['oif "lo" accept', "jump refuse"]
    assert chain(text, "forward")[1:] == ['oif "lo" accept', "jump refuse"]
    assert chain(text, "input")[1:] == ['iif "lo" accept']


def test_what_is_refused_is_counted_per_destination_then_rejected_fast() -> None:
    refuse = chain(ruleset(), "refuse")
    # A reset for TCP: one SYN, one count, ECONNREFUSED at once (an ICMP reject lets a blocking
    # connect retry its SYN for a second, each retry counted); ICMP for the rest (EPERM).
    assert refuse[-2:] == [
        "meta l4proto tcp reject with tcp reset",
        "reject with icmpx admin-prohibited",
    ]
    adds = [line for line in refuse if " add @" in line]
    assert len(adds) == 4  # IPv4 and IPv6, with and without a port
    assert any("add @out4 { ip daddr . meta l4proto . th dport }" in line for line in adds)
    assert any("add @out6 { ip6 daddr . meta l4proto . th dport }" in line for line in adds)
    # counting never decides: no verdict on a counting rule (a full set still ends in reject)
    assert not any(word in line for line in adds for word in ("accept", "reject", "drop"))


def test_the_sets_count_and_are_bounded() -> None:
    text = ruleset(set_size=128)
    sets = [line.strip() for line in text.splitlines() if line.strip().startswith("set ")]
    assert len(sets) == 4
    assert all("flags dynamic; counter; size 128;" in line for line in sets)


def test_the_table_is_replaced_as_a_whole() -> None:
    lines = ruleset().splitlines()
    assert lines[:2] == ["table inet trustproof", "delete table inet trustproof"]


def test_only_ipv6_link_plumbing_is_dropped_uncounted() -> None:
    (quiet,) = [line for line in chain(ruleset(), "refuse") if line.endswith(" drop")]
    assert quiet.startswith("icmpv6 type {")
    assert "echo-request" not in quiet  # a ping is the service's own attempt: counted


NFT_JSON = {
    "nftables": [
        {"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
        {"table": {"family": "inet", "name": "trustproof", "handle": 1}},
        {
            "set": {
                "family": "inet",
                "name": "out4",
                "table": "trustproof",
                "type": ["ipv4_addr", "inet_proto", "inet_service"],
                "elem": [
                    {
                        "elem": {
                            "val": {"concat": ["192.0.2.10", "udp", 53]},
                            "counter": {"packets": 1, "bytes": 29},
                        }
                    },
                    {
                        "elem": {
                            "val": {"concat": ["192.0.2.10", "tcp", 443]},
                            "counter": {"packets": 3, "bytes": 180},
                        }
                    },
                ],
            }
        },
        {
            "set": {
                "family": "inet",
                "name": "out4x",
                "table": "trustproof",
                "elem": [
                    {
                        "elem": {
                            "val": {"concat": ["192.0.2.10", "icmp"]},
                            "counter": {"packets": 1, "bytes": 28},
                        }
                    }
                ],
            }
        },
        {
            "set": {
                "family": "inet",
                "name": "out6",
                "table": "trustproof",
                "elem": [
                    {
                        "elem": {
                            "val": {"concat": ["2001:db8::1", "tcp", 80]},
                            "counter": {"packets": 2, "bytes": 160},
                        }
                    }
                ],
            }
        },
        {"set": {"family": "inet", "name": "someone-elses", "elem": [{"elem": {"val": 1}}]}},
    ]
}


def test_drops_are_read_per_destination_most_first() -> None:
    assert parse_drops(json.dumps(NFT_JSON)) == (
        DropCount("tcp", "192.0.2.10", 443, 3),
        DropCount("tcp", "2001:db8::1", 80, 2),
        DropCount("icmp", "192.0.2.10", None, 1),
        DropCount("udp", "192.0.2.10", 53, 1),
    )


def test_no_drops_and_empty_sets() -> None:
    empty = {"nftables": [{"set": {"name": "out4", "table": "trustproof"}}]}
    assert parse_drops(json.dumps(empty)) == ()
    assert parse_drops('{"nftables": []}') == ()


def test_other_protocols_and_missing_counters() -> None:
    text = json.dumps(
        {"nftables": [{"set": {"name": "out4x", "elem": [{"val": {"concat": ["10.0.0.1", 47]}}]}}]}
    )
    assert parse_drops(text) == (DropCount("other", "10.0.0.1", None, 0),)


def test_garbage_is_a_clear_error() -> None:
    with pytest.raises(SandboxError, match="not JSON"):
        parse_drops("Error: no such table")


def test_a_drop_describes_itself() -> None:
    assert DropCount("tcp", "192.0.2.10", 443, 3).describe() == "tcp 192.0.2.10:443 (3 packets)"
    assert DropCount("udp", "2001:db8::1", 53, 1).describe() == "udp [2001:db8::1]:53 (1 packet)"
    assert DropCount("icmp", "192.0.2.10", None, 2).describe() == "icmp 192.0.2.10 (2 packets)"
