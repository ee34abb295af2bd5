"""The encrypted audit log: what is written reads back, and every kind of tampering is caught and
named at its first bad entry (the tampering matrix of issue 16)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from trustproof.audit import checkpoint
from trustproof.audit.chain import Header, Seal, checkpoint_line, digest, parse_entry
from trustproof.audit.crypto import public_bytes
from trustproof.audit.verify import verify
from trustproof.audit.writer import LogWriter

KEK = bytes(range(32))
JWT = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"


def record(i: int) -> dict[str, object]:
    return {
        "kind": "decision",
        "time": "2030-01-01T00:00:00+00:00",
        "service": "orders",
        "path": f"/orders/{i}",
        "peer_spiffe_id": "spiffe://shop.test/storefront",
        "allowed": i % 3 != 0,
    }


def build(n: int = 10, every: int = 4, closed: bool = True) -> list[bytes]:
    """The lines of a log with `n` records, a checkpoint every `every` (entries numbered from 1
    on line 2: line k holds entry k-1)."""
    writer = LogWriter(KEK, run="r1", checkpoint_every=every)
    lines = [writer.header_line]
    for i in range(n):
        lines.extend(writer.append(record(i)))
    if closed:
        lines.append(writer.checkpoint(final=True))
    return lines


def joined(lines: list[bytes]) -> bytes:
    return b"".join(line + b"\n" for line in lines)


def test_an_intact_log_verifies_and_decrypts_every_record() -> None:
    lines = build()
    result = verify(joined(lines), KEK)
    assert result.ok, result.problem
    assert (result.records, result.checkpoints, result.closed) == (10, 3, True)
    assert [r.data for r in result.contents] == [record(i) for i in range(10)]
    # 10 records + checkpoints after 4 and 8 + the final one = entry 13
    assert result.sealed_through == result.entries == 13
    assert verify(joined(lines), None).ok  # chain and signatures check without the KEK too


def test_nothing_readable_about_a_request_is_outside_the_ciphertext() -> None:
    writer = LogWriter(KEK, run="r1")
    data = joined([writer.header_line, *writer.append({**record(1), "note": JWT})])
    for readable in (b"spiffe://", b"/orders/1", b"storefront", b"decision", JWT.encode()):
        assert readable not in data
    inside = verify(data + writer.checkpoint(final=True) + b"\n", KEK).contents[0].data
    assert JWT not in json.dumps(inside)  # scrubbed before it was encrypted


def edit_ciphertext(lines: list[bytes]) -> list[bytes]:
    entry = json.loads(lines[3])
    ct = bytearray(entry["ct"].encode())
    ct[5] = ord("A") if ct[5] != ord("A") else ord("B")
    entry["ct"] = ct.decode()
    return [*lines[:3], json.dumps(entry, separators=(",", ":")).encode(), *lines[4:]]


def forged_final(lines: list[bytes]) -> list[bytes]:
    """A kill-9'd log (no closing checkpoint) "closed" by someone without the key."""
    body = lines[:-1]
    last = parse_entry(body[-1])
    seal = Seal("r1", last.seq + 1, digest(body[-1]), 10, "2030-01-01T00:00:00+00:00", True)
    signature = checkpoint.sign(Ed25519PrivateKey.generate(), seal)
    return [*body, checkpoint_line(seal, signature)]


def swapped_header_key(lines: list[bytes]) -> list[bytes]:
    """The forger's own key in the header, every checkpoint re-signed with it."""
    mine = Ed25519PrivateKey.generate()
    header = Header.parse(lines[0])
    fake = Header(
        header.run,
        header.created,
        header.kek_id,
        header.data_key,
        public_bytes(mine.public_key()),
        header.checkpoint_every,
    )
    out = [fake.line()]
    for line in lines[1:]:
        entry = parse_entry(line)
        resigned = checkpoint_line(entry.seal("r1"), checkpoint.sign(mine, entry.seal("r1")))
        out.append(resigned if entry.type == "c" else line)
    return out


Tamper = Callable[[list[bytes]], list[bytes]]

# kind, first bad entry, tampering (line k holds entry k-1; entry 5 is the first checkpoint)
MATRIX: list[tuple[str, str, int | None, Tamper]] = [
    ("edited record", "edited", 3, edit_ciphertext),
    ("edited line no longer JSON", "edited", 3, lambda ls: [*ls[:3], b"{oops", *ls[4:]]),
    ("deleted record", "deleted", 3, lambda ls: [*ls[:3], *ls[4:]]),
    ("deleted two records", "deleted", 2, lambda ls: [*ls[:2], *ls[4:]]),
    ("reordered records", "reordered", 2, lambda ls: [*ls[:2], ls[3], ls[2], *ls[4:]]),
    ("inserted copy", "inserted", 2, lambda ls: [*ls[:4], ls[2], *ls[4:]]),
    ("inserted after close", "inserted", 14, lambda ls: [*ls, ls[3]]),
    ("truncated: closing checkpoint cut", "truncated", 13, lambda ls: ls[:-1]),
    ("truncated: records cut", "truncated", 8, lambda ls: ls[:8]),
    ("truncated: line cut short", "truncated", 10, lambda ls: [*ls[:10], ls[10][:20]]),
    ("forged closing checkpoint", "forged-checkpoint", 13, forged_final),
    ("header edited", "edited", None, lambda ls: [ls[0].replace(b'"r1"', b'"r2"'), *ls[1:]]),
    # without the KEK: the header's hash no longer starts the chain
    ("header key swapped, checkpoints re-signed", "edited", None, swapped_header_key),
]


@pytest.mark.parametrize(
    ("kind", "seq", "tamper"), [m[1:] for m in MATRIX], ids=[m[0] for m in MATRIX]
)
@pytest.mark.parametrize("with_kek", [True, False], ids=["kek", "no-kek"])
def test_each_tampering_is_caught_at_its_first_bad_entry(
    kind: str, seq: int | None, tamper: Tamper, with_kek: bool
) -> None:
    lines = build()
    assert verify(joined(lines), KEK).ok  # the twin: untouched, it verifies
    data = joined(tamper(lines))
    if tamper is MATRIX[9][3]:
        data = data[:-1]  # a cut line has no newline after it
    problem = verify(data, KEK if with_kek else None).problem
    assert problem is not None
    if tamper is swapped_header_key and with_kek:
        # With the KEK the header's key is known not to be the one derived from the data key.
        kind = "forged-checkpoint"
    assert (problem.kind, problem.seq) == (kind, seq), str(problem)


def test_a_forged_checkpoint_mid_log_is_caught() -> None:
    lines = build()
    entry = parse_entry(lines[5])  # the first checkpoint (entry 5)
    assert entry.type == "c"
    forged = checkpoint_line(
        entry.seal("r1"), checkpoint.sign(Ed25519PrivateKey.generate(), entry.seal("r1"))
    )
    problem = verify(joined([*lines[:5], forged, *lines[6:]]), KEK).problem
    assert problem is not None
    assert (problem.kind, problem.seq) == ("forged-checkpoint", 5)


def test_a_checkpoint_that_miscounts_is_caught() -> None:
    """Signed correctly, but over a different record count: only the log's key could make it,
    and it still disagrees with the chain."""
    writer = LogWriter(KEK, run="r1", checkpoint_every=100)
    lines = [writer.header_line, *writer.append(record(0))]
    writer.records = 5  # a writer lying about what it sealed
    lines.append(writer.checkpoint(final=True))
    problem = verify(joined(lines), KEK).problem
    assert problem is not None
    assert (problem.kind, problem.seq) == ("forged-checkpoint", 2)


def test_the_wrong_kek_is_named_as_such() -> None:
    problem = verify(joined(build()), os.urandom(32)).problem
    assert problem is not None
    assert problem.kind == "wrong-key"


def test_a_log_of_a_killed_writer_verifies_up_to_its_last_checkpoint() -> None:
    lines = build(n=10, every=4, closed=False)
    result = verify(joined(lines), KEK)
    assert result.problem is not None
    assert result.problem.kind == "truncated"
    assert (result.records, result.sealed_records) == (10, 8)
    assert len(result.contents) == 10  # every intact record is still readable


@given(st.data())
@settings(max_examples=settings.default.max_examples * 3 // 2)
def test_any_changed_byte_or_cut_is_caught_and_never_crashes(data: st.DataObject) -> None:
    log = joined(build(n=6, every=3))
    cut = data.draw(st.booleans())
    if cut:
        changed = log[: data.draw(st.integers(0, len(log) - 1))]
    else:
        at = data.draw(st.integers(0, len(log) - 1))
        byte = data.draw(st.integers(0, 255).filter(lambda b: b != log[at]))
        changed = log[:at] + bytes([byte]) + log[at + 1 :]
    for kek in (KEK, None):
        result = verify(changed, kek)
        assert not result.ok, (cut, result)


def test_a_signature_spelled_differently_is_an_edit_too() -> None:
    """A regression: base64 has several spellings of the same bytes (the unused low bits of
    the last character): the closing checkpoint, which no later line hashes, verified after such
    an edit."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    lines = build()
    closing = json.loads(lines[-1])
    sig = closing["sig"]
    assert sig.endswith("==")
    value = alphabet.index(sig[-3])
    closing["sig"] = sig[:-3] + alphabet[value ^ 1] + "=="  # a low bit no byte uses
    edited = json.dumps(closing, separators=(",", ":"), sort_keys=True).encode()
    problem = verify(joined([*lines[:-1], edited]), KEK).problem
    assert problem is not None
    assert (problem.kind, problem.seq) == ("edited", 13)
