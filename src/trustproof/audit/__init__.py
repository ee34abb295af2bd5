"""The audit log: one record per request a gateway sees, and every other event of a run.

Core pieces, no I/O: `records` (what is recorded), `chain` (the wire format and hash chain),
`crypto` (AES-256-GCM, key wrap, the derived checkpoint key), `checkpoint` (Ed25519-signed
seals), `writer` (records to lines), `verify` (lines back to records, or the first bad entry),
`ocsf` (OCSF export), `query` (filters). With file I/O: `sinks` (memory, plaintext JSON lines,
fan-out), `store` (the encrypted log a sandbox writes), `servicelog` (each service's output,
encrypted the same way, and its one reader), `keys` (where the KEK comes from), `files` (reading
a run's log).
"""

from trustproof.audit.records import (
    EVENT_KINDS,
    AuditCompletion,
    AuditEvent,
    AuditSink,
    EventKind,
    Timings,
)
from trustproof.audit.sinks import (
    AuditUnavailable,
    FanOutSink,
    FileProblem,
    JsonLinesSink,
    MemorySink,
    file_problem,
)

__all__ = [
    "EVENT_KINDS",
    "AuditCompletion",
    "AuditEvent",
    "AuditSink",
    "AuditUnavailable",
    "EventKind",
    "FanOutSink",
    "FileProblem",
    "JsonLinesSink",
    "MemorySink",
    "Timings",
    "file_problem",
]
