"""Reading the observed surface from /proc text (no sockets, no /proc): the listening-socket
tables, the process trees and the TLS answer check of `trustproof.sandbox.surface`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from trustproof.errors import SandboxError
from trustproof.sandbox.surface import (
    Process,
    Socket,
    client_hello,
    is_tls_record,
    listening,
    parse_net_table,
    parse_stat,
    tree,
)

HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid"
ZERO6 = "0" * 32


def table(*rows: tuple[str, str, str, int]) -> str:
    """A /proc/net table: (local, remote, state, inode) per row, the other columns filled in."""
    lines = [HEADER + "  timeout inode"]
    for index, (local, remote, state, inode) in enumerate(rows):
        rest = "00000000:00000000 00:00000000 00000000  1000        0"
        lines.append(f"   {index}: {local} {remote} {state} {rest} {inode} 1")
    return "\n".join(lines) + "\n"


TCP = table(
    ("0100007F:4745", "00000000:0000", "0A", 111),
    ("00000000:238C", "00000000:0000", "0A", 112),
    ("0100007F:4745", "0100007F:D2A4", "01", 113),  # an established connection
)
TCP6 = table(
    ("00000000000000000000000001000000:1F90", f"{ZERO6}:0000", "0A", 121),
    (f"{ZERO6}:1F91", f"{ZERO6}:0000", "0A", 122),
)
UDP = table(
    ("0100007F:14E9", "00000000:0000", "07", 131),
    ("0100007F:14EA", "0100007F:0035", "01", 132),  # connected
)


def test_tcp_listeners_are_read_and_connections_are_not() -> None:
    assert parse_net_table(TCP, "tcp") == {
        111: Socket("tcp", "127.0.0.1", 18245),
        112: Socket("tcp", "0.0.0.0", 9100),  # noqa: S104
    }


def test_ipv6_listeners_read_loopback_and_wildcard() -> None:
    assert parse_net_table(TCP6, "tcp") == {
        121: Socket("tcp", "::1", 8080),
        122: Socket("tcp", "::", 8081),
    }


def test_bound_unconnected_udp_sockets_listen_and_connected_ones_do_not() -> None:
    assert parse_net_table(UDP, "udp") == {131: Socket("udp", "127.0.0.1", 5353)}


def test_a_stat_line_with_spaces_and_parentheses_in_the_name() -> None:
    line = "4242 (my (odd) svc) S 4200 4242 4242 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 77"
    assert parse_stat(4242, line) == Process(4242, "my (odd) svc", 4200, 4242)


def test_the_tree_holds_the_group_and_every_descendant_and_nothing_else() -> None:
    processes = [
        Process(10, "service", 1, 10),
        Process(11, "worker", 10, 10),
        Process(12, "own-session", 10, 12),  # setsid() child: found by parent pid
        Process(13, "grandchild", 12, 12),
        Process(14, "group-member", 1, 10),  # reparented to init, still in the group
        Process(20, "postgres", 1, 20),  # the sandbox's, not the service's
        Process(21, "gateway", 1, 21),
    ]
    assert [p.pid for p in tree(processes, [10])] == [10, 11, 12, 13, 14]
    assert tree(processes, [99]) == []  # a service that is gone has no tree


def test_a_tls_answer_is_a_tls_record_and_plaintext_is_not() -> None:
    hello = client_hello()
    assert is_tls_record(hello[:5]) is True  # a ClientHello is itself a handshake record
    assert is_tls_record(b"\x15\x03\x03\x00\x02") is True  # an alert
    assert is_tls_record(b"HTTP/") is False
    assert is_tls_record(b"") is None


def fake_proc(root: Path) -> Path:
    """A /proc with a service (10), its worker (11, sharing the listening socket), a child in
    its own session (12) in another network namespace, and the sandbox's PostgreSQL (20)."""
    (root / "netns").write_text("")
    (root / "otherns").write_text("")
    stats = {10: (1, 10), 11: (10, 10), 12: (10, 12), 20: (1, 20)}
    sockets = {10: [111, 112], 11: [111], 12: [121], 20: [131]}
    for pid, (ppid, pgrp) in stats.items():
        base = root / str(pid)
        (base / "fd").mkdir(parents=True)
        (base / "net").mkdir()
        (base / "ns").mkdir()
        (base / "stat").write_text(f"{pid} (proc {pid}) S {ppid} {pgrp} {pgrp} 0 -1 0\n")
        for index, inode in enumerate(sockets[pid]):
            os.symlink(f"socket:[{inode}]", base / "fd" / str(index))
        os.symlink("/dev/null", base / "fd" / "9")
        os.link(root / ("otherns" if pid == 12 else "netns"), base / "ns" / "net")
        (base / "net" / "tcp").write_text(TCP)
        (base / "net" / "udp").write_text(table(("0100007F:14E9", "00000000:0000", "07", 131)))
        (base / "net" / "tcp6").write_text(TCP6 if pid == 12 else table())
    (root / "self" / "ns").mkdir(parents=True)
    os.link(root / "netns", root / "self" / "ns" / "net")
    return root


def test_sockets_of_the_tree_are_joined_with_their_namespaces_tables(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path)
    found = listening({"orders": 10, "db": 20}, "orders", proc)
    assert [(f.process.pid, f.socket, f.same_netns) for f in found] == [
        (10, Socket("tcp", "127.0.0.1", 18245), True),
        (10, Socket("tcp", "0.0.0.0", 9100), True),  # noqa: S104
        (12, Socket("tcp", "::1", 8080), False),  # the child's own namespace
    ]  # the worker's shared socket counts once; PostgreSQL (pid 20) is not the service's
    with pytest.raises(SandboxError) as caught:
        listening({"orders": 10}, "payments", proc)
    assert caught.value.hint
