"""Each service namespace's nftables ruleset: loopback only, everything else counted and refused.

    apply(ns, ruleset())              # `ip netns exec <ns> nft -f -`
    read_drops(ns)                    # -> (DropCount("tcp", "192.0.2.10", 443, 3), ...)

What the ruleset says (`ruleset` builds the text; a pure function):

* output and forward: packets leaving through ``lo`` pass (the service's own port, the relays to
  its allowed peers, the sandbox resolver — all on the namespace's 127.0.0.1); anything else is
  recorded in a dynamic set keyed by destination (address, protocol, port for TCP and UDP) whose
  elements count packets, then rejected at once: TCP with a reset (a connect fails with
  ``ECONNREFUSED`` after exactly one SYN — with an ICMP reject a blocking connect retries its SYN
  for a second and each retry is counted again), the rest with ICMP "administratively
  prohibited" (a UDP send fails with ``EPERM``). The policy is drop, so a rule that fails (a full
  set) still drops.
* input: only ``lo``.
* IPv6 neighbour discovery and MLD the kernel sends by itself are dropped without being counted:
  they are the link's plumbing, not the service's attempts.

`read_drops` reads the sets back as JSON (``nft -j``) and `parse_drops` (pure) turns them into
`DropCount` values, one per destination.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from trustproof.errors import SandboxError
from trustproof.sandbox.choice import system_tool
from trustproof.sandbox.netns import ip_tool, run_ip

TABLE = "trustproof"
SETS = ("out4", "out4x", "out6", "out6x")
NFT_TIMEOUT_SECONDS = 10.0
Proto = Literal["tcp", "udp", "icmp", "other"]


@dataclass(frozen=True)
class DropCount:
    """Packets a namespace sent to one destination that the firewall refused."""

    proto: Proto
    address: str
    port: int | None
    packets: int

    def describe(self) -> str:
        where = f"[{self.address}]" if ":" in self.address else self.address
        target = f"{where}:{self.port}" if self.port is not None else where
        return f"{self.proto} {target} ({self.packets} packet{'s' if self.packets != 1 else ''})"


def ruleset(*, set_size: int = 4096) -> str:
    """The nftables ruleset of a service namespace (`nft -f` input; replaces the table)."""
    sets = "\n".join(
        f"  set {name} {{ type {key}; flags dynamic; counter; size {set_size}; }}"
        for name, key in (
            ("out4", "ipv4_addr . inet_proto . inet_service"),
            ("out4x", "ipv4_addr . inet_proto"),
            ("out6", "ipv6_addr . inet_proto . inet_service"),
            ("out6x", "ipv6_addr . inet_proto"),
        )
    )
    plumbing = (
        "nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert, "
        "mld-listener-report, mld2-listener-report"
    )
    v4_port = "ip daddr . meta l4proto . th dport"
    v6_port = "ip6 daddr . meta l4proto . th dport"
    return f"""\
table inet {TABLE}
delete table inet {TABLE}
table inet {TABLE} {{
{sets}
  chain output {{
    type filter hook output priority 0; policy drop;
    oif "lo" accept
    jump refuse
  }}
  chain forward {{
    type filter hook forward priority 0; policy drop;
    oif "lo" accept
    jump refuse
  }}
  chain input {{
    type filter hook input priority 0; policy drop;
    iif "lo" accept
  }}
  chain refuse {{
    icmpv6 type {{ {plumbing} }} drop
    meta nfproto ipv4 meta l4proto {{ tcp, udp }} add @out4 {{ {v4_port} }}
    meta nfproto ipv4 meta l4proto != {{ tcp, udp }} add @out4x {{ ip daddr . meta l4proto }}
    meta nfproto ipv6 meta l4proto {{ tcp, udp }} add @out6 {{ {v6_port} }}
    meta nfproto ipv6 meta l4proto != {{ tcp, udp }} add @out6x {{ ip6 daddr . meta l4proto }}
    meta l4proto tcp reject with tcp reset
    reject with icmpx admin-prohibited
  }}
}}
"""


def nft_tool() -> str | None:
    """The path of the ``nft`` command, or None."""
    return system_tool("nft")


def _nft(ns: str, args: list[str], stdin: str | None, what: str) -> str:
    ip, nft = ip_tool(), nft_tool()
    if ip is None or nft is None:
        raise SandboxError(
            f"{what}: {'iproute2' if ip is None else 'nftables'} is not installed",
            "apt-get install iproute2 nftables, or run with `--backend local`",
        )
    return run_ip(
        ["netns", "exec", ns, nft, *args],
        stdin=stdin,
        what=what,
        tool_name="nft",
        hint="the isolated backend needs nftables in the kernel (nf_tables) and root",
        timeout=NFT_TIMEOUT_SECONDS,
    )


def apply(ns: str, text: str) -> None:
    """Load `text` (an nft script) into the namespace `ns` atomically; `SandboxError` if refused."""
    _nft(ns, ["-f", "-"], text, f"cannot load the firewall of network namespace {ns}")


def read_drops(ns: str) -> tuple[DropCount, ...]:
    """What the namespace `ns` tried and the firewall refused, one count per destination."""
    text = _nft(ns, ["-j", "list", "table", "inet", TABLE], None, f"cannot read drops of {ns}")
    return parse_drops(text)


def _proto(value: Any) -> Proto:
    if value in ("tcp", 6):
        return "tcp"
    if value in ("udp", 17):
        return "udp"
    if value in ("icmp", "ipv6-icmp", "icmpv6", 1, 58):
        return "icmp"
    return "other"


def parse_drops(text: str) -> tuple[DropCount, ...]:
    """`nft -j list table inet trustproof` output -> the counted destinations (most packets
    first). Elements without a counter count as 0 packets; unknown shapes are skipped."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise SandboxError(f"nft printed something that is not JSON: {exc}") from None
    found: list[DropCount] = []
    for item in document.get("nftables", []) if isinstance(document, dict) else []:
        declared = item.get("set") if isinstance(item, dict) else None
        if not isinstance(declared, dict) or declared.get("name") not in SETS:
            continue
        for element in declared.get("elem", []):
            entry = element.get("elem", element) if isinstance(element, dict) else {}
            value = entry.get("val") if isinstance(entry, dict) else None
            parts = value.get("concat") if isinstance(value, dict) else None
            if not isinstance(parts, list) or len(parts) not in (2, 3):
                continue
            counter = entry.get("counter") or {}
            packets = int(counter.get("packets", 0)) if isinstance(counter, dict) else 0
            port = int(parts[2]) if len(parts) == 3 else None
            found.append(DropCount(_proto(parts[1]), str(parts[0]), port, packets))
    return tuple(sorted(found, key=lambda d: (-d.packets, d.address, d.proto, d.port or 0)))


# -- network faults on a link (``network-fault``, ``link: service``: `sandbox.netfault`) ----------

FAULT_TABLE = "trustproof-fault"
FaultKind = Literal["loss", "reset"]


def fault_table(port: int) -> str:
    """The table of the fault on connections to loopback port `port` (one per link)."""
    return f"{FAULT_TABLE}-{port}"


def fault_ruleset(port: int, kind: FaultKind, loss_percent: int = 100) -> str:
    """A table of its own (the service's ruleset is left as it is) whose output chain, ahead of
    it, degrades TCP connections to ``127.0.0.1:<port>`` over ``lo``: ``reset`` rejects every
    one with a TCP reset (the connect fails with ``ECONNREFUSED``); ``loss`` drops the opening
    SYN of `loss_percent` % of them, drawn by the kernel (``numgen random``; the connect gets no
    answer). Nothing it refuses is counted as the service's own egress."""
    if not 0 < port < 65536:
        raise ValueError(f"bad port {port}")
    match = f'oif "lo" ip daddr 127.0.0.1 tcp dport {port}'
    if kind == "reset":
        rule = f"{match} reject with tcp reset"
    elif loss_percent >= 100:
        rule = f"{match} tcp flags & (syn | ack) == syn drop"
    elif loss_percent > 0:
        draw = f"numgen random mod 100 < {loss_percent}"
        rule = f"{match} tcp flags & (syn | ack) == syn {draw} drop"
    else:
        rule = "# no loss"
    table = fault_table(port)
    return f"""\
table inet {table}
delete table inet {table}
table inet {table} {{
  chain output {{
    type filter hook output priority -10; policy accept;
    {rule}
  }}
}}
"""


def remove_fault(ns: str, port: int) -> None:
    """Delete the fault table of `port` from the namespace `ns` (quiet when it is gone)."""
    table = fault_table(port)
    apply(ns, f"table inet {table}\ndelete table inet {table}\n")
