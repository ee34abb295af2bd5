"""Building the audit log, no I/O: `LogWriter` turns records into the lines to append
(`trustproof.audit.chain` says what a line holds); the store (`trustproof.audit.store`) writes
them. A checkpoint follows every `checkpoint_every` records, and one marked final closes the log.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from trustproof.audit import checkpoint, crypto
from trustproof.audit.chain import Header, Seal, checkpoint_line, digest, record_aad, record_line
from trustproof.scrub import scrub


def utc_now() -> str:
    return datetime.now(UTC).isoformat()


def plaintext(record: Mapping[str, Any], *, scrubbed: bool = False) -> bytes:
    """A record as the bytes that get encrypted: compact JSON, scrubbed (no secret inside);
    `scrubbed`: its text was scrubbed already (the log pump scrubs every line of a service's
    output), not again."""
    text = json.dumps(record, separators=(",", ":"), default=str)
    return (text if scrubbed else scrub(text)).encode()


class LogWriter:
    def __init__(
        self,
        kek: bytes,
        *,
        run: str | None = None,
        checkpoint_every: int = 256,
        now: Callable[[], str] = utc_now,
    ) -> None:
        if checkpoint_every < 1:
            raise ValueError("checkpoint_every must be at least 1")
        data_key = crypto.new_data_key()
        self._cipher = crypto.RecordCipher(data_key)
        self._signer = crypto.signing_key(data_key)
        self._now = now
        self.header = Header(
            run=run or secrets.token_hex(8),
            created=now(),
            kek_id=crypto.kek_id(kek),
            data_key=crypto.wrap(kek, data_key),
            signing_key=crypto.public_bytes(self._signer.public_key()),
            checkpoint_every=checkpoint_every,
        )
        self.header_line = self.header.line()
        self._prev = digest(self.header_line)
        self.seq = 0  # entries so far (records and checkpoints)
        self.records = 0
        self._since_checkpoint = 0
        self.closed = False

    def __repr__(self) -> str:
        return f"LogWriter(run={self.header.run!r}, records={self.records})"

    @property
    def run(self) -> str:
        return self.header.run

    def append(self, record: Mapping[str, Any], *, scrubbed: bool = False) -> list[bytes]:
        """The line(s) for one record: the record, and a checkpoint when one is due
        (`scrubbed`: see `plaintext`)."""
        if self.closed:
            raise ValueError("the audit log is closed")
        seq = self.seq + 1
        aad = record_aad(self.run, seq, self._prev)
        nonce, ciphertext = self._cipher.seal(plaintext(record, scrubbed=scrubbed), aad)
        lines = [self._push(record_line(seq, self._prev, nonce, ciphertext))]
        self.records += 1
        self._since_checkpoint += 1
        if self._since_checkpoint >= self.header.checkpoint_every:
            lines.append(self.checkpoint())
        return lines

    def checkpoint(self, *, final: bool = False) -> bytes:
        """A signed checkpoint over everything so far; `final` closes the log."""
        if self.closed:
            raise ValueError("the audit log is closed")
        seal = Seal(self.run, self.seq + 1, self._prev, self.records, self._now(), final)
        signature = checkpoint.sign(self._signer, seal)
        self._since_checkpoint = 0
        self.closed = final
        return self._push(checkpoint_line(seal, signature))

    def _push(self, line: bytes) -> bytes:
        self.seq += 1
        self._prev = digest(line)
        return line
