"""The audit log's wire format and hash chain, no I/O.

One file, one JSON object per line (compact, sorted keys)::

    header      {"format": "trustproof-audit", "version": 1, "run": ..., "data_key": <wrapped>,
                 "signing_key": <Ed25519 public>, "kek_id": ..., "checkpoint_every": N, ...}
    record      {"t": "r", "seq": n, "prev": <hex>, "nonce": <b64>, "ct": <b64>}
    checkpoint  {"t": "c", "seq": n, "prev": <hex>, "records": k, "time": ..., "final": bool,
                 "sig": <b64>}

Every entry after the header (records and checkpoints alike) is numbered from 1 (`seq`) and
carries in `prev` the SHA-256 of the line before it (the header's for entry 1): removing, adding,
moving or changing any line breaks the chain at the next one. A record's ciphertext is
authenticated together with its run, number and `prev` (the AES-GCM additional data), so it
cannot be moved to another place either. Nothing readable about a request (identity, path,
decision) is outside the ciphertext.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

FORMAT = "trustproof-audit"
VERSION = 1

EntryType = Literal["r", "c"]


def dumps(data: dict[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":"), sort_keys=True).encode()


def digest(line: bytes) -> str:
    """The chain hash of one line (without its newline)."""
    return hashlib.sha256(line).hexdigest()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: object) -> bytes:
    if not isinstance(text, str):
        raise ValueError("expected base64 text")
    try:
        data = base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise ValueError("not base64") from exc
    if b64(data) != text:  # one spelling per value: a changed byte is always a change
        raise ValueError("not canonical base64")
    return data


def record_aad(run: str, seq: int, prev: str) -> bytes:
    return f"{FORMAT}/{VERSION}|{run}|{seq}|{prev}".encode()


@dataclass(frozen=True)
class Header:
    run: str
    created: str
    kek_id: str
    data_key: bytes  # wrapped by the KEK
    signing_key: bytes  # Ed25519 public key, raw
    checkpoint_every: int

    def line(self) -> bytes:
        return dumps(
            {
                "format": FORMAT,
                "version": VERSION,
                "run": self.run,
                "created": self.created,
                "kek_id": self.kek_id,
                "data_key": b64(self.data_key),
                "signing_key": b64(self.signing_key),
                "checkpoint_every": self.checkpoint_every,
                "cipher": "AES-256-GCM",
                "key_wrap": "AES-KW (RFC 3394)",
                "signature": "Ed25519",
                "chain": "SHA-256",
            }
        )

    @classmethod
    def parse(cls, line: bytes) -> Header:
        """The header, or ValueError naming what is wrong with it."""
        data = _object(line)
        if data.get("format") != FORMAT:
            raise ValueError("not a trustproof audit log (no header)")
        if data.get("version") != VERSION:
            raise ValueError(f"unsupported audit log version {data.get('version')!r}")
        every = data.get("checkpoint_every")
        if not isinstance(every, int) or every < 1:
            raise ValueError("checkpoint_every is not a positive integer")
        return cls(
            run=_text(data, "run"),
            created=_text(data, "created"),
            kek_id=_text(data, "kek_id"),
            data_key=unb64(data.get("data_key")),
            signing_key=unb64(data.get("signing_key")),
            checkpoint_every=every,
        )


@dataclass(frozen=True)
class Entry:
    """One line after the header, parsed (nothing decrypted or checked yet)."""

    type: EntryType
    seq: int
    prev: str
    nonce: bytes = b""
    ciphertext: bytes = b""
    records: int = 0
    time: str = ""
    final: bool = False
    signature: bytes = b""

    def seal(self, run: str) -> Seal:
        return Seal(run, self.seq, self.prev, self.records, self.time, self.final)


def record_line(seq: int, prev: str, nonce: bytes, ciphertext: bytes) -> bytes:
    return dumps({"t": "r", "seq": seq, "prev": prev, "nonce": b64(nonce), "ct": b64(ciphertext)})


@dataclass(frozen=True)
class Seal:
    """What a checkpoint signs: the chain up to the entry before it (`prev`), in run `run`."""

    run: str
    seq: int
    prev: str
    records: int
    time: str
    final: bool

    def fields(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "seq": self.seq,
            "prev": self.prev,
            "records": self.records,
            "time": self.time,
            "final": self.final,
        }


def checkpoint_line(seal: Seal, signature: bytes) -> bytes:
    fields = seal.fields()
    del fields["run"]
    return dumps({"t": "c", **fields, "sig": b64(signature)})


def parse_entry(line: bytes) -> Entry:
    """One record or checkpoint line, or ValueError."""
    data = _object(line)
    kind, seq, prev = data.get("t"), data.get("seq"), data.get("prev")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise ValueError("no entry number")
    if not isinstance(prev, str) or len(prev) != 64:
        raise ValueError("no chain hash")
    if kind == "r":
        nonce, ciphertext = unb64(data.get("nonce")), unb64(data.get("ct"))
        return Entry("r", seq, prev, nonce=nonce, ciphertext=ciphertext)
    if kind == "c":
        records, final = data.get("records"), data.get("final")
        if not isinstance(records, int) or not isinstance(final, bool):
            raise ValueError("a checkpoint without its record count")
        return Entry(
            "c",
            seq,
            prev,
            records=records,
            time=_text(data, "time"),
            final=final,
            signature=unb64(data.get("sig")),
        )
    raise ValueError(f"unknown entry type {kind!r}")


def _object(line: bytes) -> dict[str, Any]:
    try:
        data = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError("not JSON") from exc
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise ValueError(f"no {key}")
    return value
