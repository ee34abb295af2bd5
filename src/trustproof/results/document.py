"""`results.json`: the one document a run leaves behind, written and read here only.

`write` stores a `Results` (scrubbed, atomically, 0600) in a run directory; `load`/`from_json` read
one back and refuse what they do not understand (a missing file, broken JSON, an unknown
`version`, a field of the wrong type) with a `ReportError` that names the file and the field: a
report rendered from half a result would be worse than none. Writing then reading gives back an
equal `Results` (a property test checks it).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, NoReturn

from trustproof.errors import ReportError
from trustproof.results.model import (
    CASE_TEXT,
    AlertRecord,
    CaseRecord,
    Evidence,
    Results,
    ScenarioRecord,
    ShardRecord,
)
from trustproof.scrub import scrub
from trustproof.shard import MAX_SHARDS, Shard
from trustproof.view.egress import EgressEvent, EventKind

RESULTS_FILE = "results.json"
RESULTS_VERSION = 1
SUPPORTED_VERSIONS = (RESULTS_VERSION,)


def write(results: Results, run_dir: Path) -> Path:
    """Write `results` as `run_dir/results.json` (scrubbed: evidence quotes what servers said;
    0600; replaced atomically) and return its path."""
    path = run_dir / RESULTS_FILE
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(scrub(json.dumps(results.to_json(), indent=1)))
    os.replace(tmp, path)
    return path


def load(path: Path) -> Results:
    """Read a results document: `path` is the file or the run directory holding it."""
    is_dir = path.is_dir() or (not path.exists() and path.suffix != ".json")
    file = path / RESULTS_FILE if is_dir else path
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReportError(
            f"{file}: no results here",
            "run `trustproof run` (or `trustproof probe`) first, or pass the run directory",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportError(f"{file}: cannot read it: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportError(f"{file}: not JSON ({exc})") from None
    return from_json(data, str(file))


def from_json(data: Any, source: str = "results") -> Results:
    """Check and convert a decoded results document; `source` names it in errors."""
    doc = _Reader(source)
    top = doc.obj(data, "")
    version = top.get("version")
    if isinstance(version, bool) or version not in SUPPORTED_VERSIONS:
        raise ReportError(
            f"{source}: unknown results version {version!r} "
            f"(this trustproof reads version {', '.join(map(str, SUPPORTED_VERSIONS))})",
            "render it with the trustproof version that wrote it, or run the suite again",
        )
    summary = doc.obj(top.get("summary"), "summary")
    return Results(
        version=version,
        started_at=doc.text(top, "started_at", ""),
        elapsed_s=doc.number(top, "elapsed_s", ""),
        cases_per_second=doc.number(top, "cases_per_second", ""),
        stopped_early=doc.flag(top, "stopped_early", ""),
        summary={str(k): int(doc.number(summary, k, "summary")) for k in summary},
        cases=tuple(_case(doc, c, f"cases[{i}]") for i, c in enumerate(doc.items(top, "cases"))),
        scenarios=tuple(
            _scenario(doc, s, f"scenarios[{i}]")
            for i, s in enumerate(doc.items(top, "scenarios", required=False))
        ),
        spec=doc.opt_text(top, "spec", ""),
        trust_domain=doc.opt_text(top, "trust_domain", ""),
        versions=_versions(doc, top.get("versions")),
        ttl=_versions(doc, top.get("ttl"), "ttl"),
        context=_versions(doc, top.get("context"), "context"),
        egress_events=tuple(
            _egress_event(doc, e, f"egress_events[{i}]")
            for i, e in enumerate(doc.items(top, "egress_events", required=False))
        ),
        alerts=tuple(
            _alert(doc, a, f"alerts[{i}]")
            for i, a in enumerate(doc.items(top, "alerts", required=False))
        ),
        shard=None if top.get("shard") is None else _shard(doc, top["shard"], "shard"),
        fingerprint=doc.opt_text(top, "fingerprint", ""),
        merged_from=tuple(
            _shard_record(doc, p, f"merged_from[{i}]")
            for i, p in enumerate(doc.items(top, "merged_from", required=False))
        ),
    )


def _whole(doc: _Reader, item: dict[str, Any], key: str, where: str) -> int:
    value = item.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        doc.fail(_at(where, key), "a whole number", value)
    return value


def _shard(doc: _Reader, raw: Any, where: str) -> Shard:
    item = doc.obj(raw, where)
    index, total = _whole(doc, item, "index", where), _whole(doc, item, "total", where)
    if not 1 <= index <= total <= MAX_SHARDS:
        doc.fail(where, f"1 <= index <= total <= {MAX_SHARDS}", item)
    return Shard(index, total)


def _shard_record(doc: _Reader, raw: Any, where: str) -> ShardRecord:
    item = doc.obj(raw, where)
    shard = _shard(doc, item, where)
    return ShardRecord(
        index=shard.index,
        total=shard.total,
        started_at=doc.text(item, "started_at", where),
        elapsed_s=doc.number(item, "elapsed_s", where),
        cases=_whole(doc, item, "cases", where),
        scenarios=_whole(doc, item, "scenarios", where),
        ok=doc.flag(item, "ok", where),
    )


def _versions(doc: _Reader, raw: Any, where: str = "versions") -> dict[str, str] | None:
    """An optional object of names to strings (``versions``: component -> version; ``ttl``:
    credential -> lifetime)."""
    if raw is None:
        return None
    values = doc.obj(raw, where)
    return {str(k): doc.text(values, k, where) for k in values}


def _case(doc: _Reader, raw: Any, where: str) -> CaseRecord:
    item = doc.obj(raw, where)
    ev = doc.obj(item.get("evidence"), f"{where}.evidence")
    audit = ev.get("audit")
    status = ev.get("status")
    if status is not None and (not isinstance(status, int) or isinstance(status, bool)):
        doc.fail(f"{where}.evidence.status", "a number or null", status)
    return CaseRecord(
        **{name: doc.text(item, name, where) for name in CASE_TEXT},
        elapsed_ms=doc.number(item, "elapsed_ms", where),
        started_ms=doc.number(item, "started_ms", where) if "started_ms" in item else 0.0,
        evidence=Evidence(
            sent=doc.text(ev, "sent", f"{where}.evidence"),
            status=status,
            detail=doc.opt_text(ev, "detail", f"{where}.evidence") or "",
            request_id=doc.opt_text(ev, "request_id", f"{where}.evidence"),
            served_by=doc.opt_text(ev, "served_by", f"{where}.evidence"),
            audit=None if audit is None else doc.obj(audit, f"{where}.evidence.audit"),
        ),
    )


EVENT_KINDS: tuple[EventKind, ...] = ("tcp", "udp", "dns")


def _egress_event(doc: _Reader, raw: Any, where: str) -> EgressEvent:
    item = doc.obj(raw, where)
    kind = item.get("kind")
    if kind not in EVENT_KINDS:
        doc.fail(f"{where}.kind", " or ".join(EVENT_KINDS), kind)
    port = item.get("port")
    if port is not None and (not isinstance(port, int) or isinstance(port, bool)):
        doc.fail(f"{where}.port", "a number or null", port)
    count = item.get("count")
    if not isinstance(count, int) or isinstance(count, bool):
        doc.fail(f"{where}.count", "a whole number", count)
    return EgressEvent(
        service=doc.text(item, "service", where),
        kind=kind,
        destination=doc.text(item, "destination", where),
        port=port,
        count=count,
    )


def _alert(doc: _Reader, raw: Any, where: str) -> AlertRecord:
    item = doc.obj(raw, where)
    return AlertRecord(
        **{
            name: doc.text(item, name, where)
            for name in ("rule", "when", "severity", "title", "detail", "subject")
        },
        count=int(doc.number(item, "count", where)),
        key=doc.opt_text(item, "key", where) or "",
    )


def _scenario(doc: _Reader, raw: Any, where: str) -> ScenarioRecord:
    item = doc.obj(raw, where)
    figures = doc.obj(item.get("figures", {}), f"{where}.figures")
    timeline: list[tuple[float, str]] = []
    for i, entry in enumerate(doc.items(item, "timeline", required=False, where=where)):
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], str)):
            doc.fail(f"{where}.timeline[{i}]", "[milliseconds, text]", entry)
        timeline.append((doc.number({"ms": entry[0]}, "ms", f"{where}.timeline[{i}]"), entry[1]))
    evidence = doc.items(item, "evidence", required=False, where=where)
    return ScenarioRecord(
        id=doc.text(item, "id", where),
        ok=doc.flag(item, "ok", where),
        verdict=doc.text(item, "verdict", where),
        summary=doc.text(item, "summary", where),
        elapsed_s=doc.number(item, "elapsed_s", where),
        figures={str(k): doc.number(figures, k, f"{where}.figures") for k in figures},
        timeline=tuple(timeline),
        evidence=tuple(str(line) for line in evidence),
    )


class _Reader:
    """Typed access to the decoded JSON; every mismatch is a `ReportError` naming the field."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, wanted: str, got: Any) -> NoReturn:
        raise ReportError(
            f"{self.source}: {where or 'the document'}: expected {wanted}, "
            f"got {json.dumps(got)[:60]}",
            "is this a trustproof results.json?",
        )

    def obj(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(where, "an object", value)
        return value

    def items(
        self, data: dict[str, Any], key: str, *, required: bool = True, where: str = ""
    ) -> list[Any]:
        value = data.get(key, None if required else [])
        if not isinstance(value, list):
            self.fail(_at(where, key), "a list", value)
        return value

    def text(self, data: dict[str, Any], key: str, where: str) -> str:
        value = data.get(key)
        if not isinstance(value, str):
            self.fail(_at(where, key), "a string", value)
        return value

    def opt_text(self, data: dict[str, Any], key: str, where: str) -> str | None:
        value = data.get(key)
        if value is not None and not isinstance(value, str):
            self.fail(_at(where, key), "a string or null", value)
        return value

    def number(self, data: dict[str, Any], key: str, where: str) -> float:
        value = data.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(_at(where, key), "a number", value)
        return float(value)

    def flag(self, data: dict[str, Any], key: str, where: str) -> bool:
        value = data.get(key)
        if not isinstance(value, bool):
            self.fail(_at(where, key), "true or false", value)
        return value


def _at(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key
