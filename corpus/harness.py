"""The detection harness of the misconfiguration corpus, shared by
``tests/integration/test_detection_corpus.py`` and ``benchmarks/detection.py``.

Each directory of ``corpus/`` is a *target*: a correct configuration of a server trustproof did
not write (its ``trustproof.yaml`` and the server's own files) plus ``mistakes.yaml``, the seeded
mistakes, each a small textual change of those files. For one run the harness copies the target
into a fresh directory, applies at most one mistake, starts the sandbox from the copy, runs the
generated cases (optionally only some probes, optionally the scenarios too) and judges:

* on the correct configuration, every failure is a *false positive*;
* on a mistake copy, the mistake is *caught* when a probe it names fails with one of the
  verdicts that mean "this got through" (over-permission or inconclusive unless the entry says
  otherwise); a failure of a probe of another family is a false positive.

A mistake whose probe (or the variant of a probe) is not on the main branch yet carries
``pending: {probe, by}``; the test skips it with that reason, the benchmark runs it and reports it
apart. The harness knows nothing about any target: everything target-specific is in its files.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from trustproof.catalogue import BY_ID
from trustproof.errors import TrustproofError
from trustproof.probes.model import CaseResult, Verdict
from trustproof.sandbox.controller import Sandbox
from trustproof.suite.runner import SuiteRun, choose, generate, run_suite
from trustproof.suite.scenarios import choose_scenarios, run_scenarios

CORPUS = Path(__file__).resolve().parent
MISTAKES_FILE = "mistakes.yaml"
CAUGHT_AS: tuple[Verdict, ...] = ("over-permission", "inconclusive")
# The family of a probe id not in this branch's catalogue yet (ids.md of issue 12), by layer.
FAMILY_OF_LAYER = {"tls": "tls", "token": "token", "authz": "authz", "db": "datastore"}
FAMILY_OF_LAYER |= {"bypass": "bypass", "surface": "bypass"}
IGNORED = shutil.ignore_patterns("__pycache__", ".trustproof", MISTAKES_FILE)


class CorpusError(Exception):
    """A corpus file that does not say what the harness needs (what, where, hint)."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(f"{message}\n    hint: {hint}")
        self.hint = hint


@dataclass(frozen=True)
class Edit:
    file: str
    old: str
    new: str


@dataclass(frozen=True)
class Pending:
    """A mistake the named probe does not catch yet (`by`: who or what is to build it), with why:
    skipped by the test with that reason, counted as missed by the benchmark."""

    probe: str
    by: str
    why: str = ""

    def reason(self) -> str:
        return f"pending: {self.probe} ({self.by})" + (f": {self.why}" if self.why else "")


@dataclass(frozen=True)
class Mistake:
    id: str
    what: str
    klass: str
    edits: tuple[Edit, ...]
    catch: tuple[str, ...]  # probe ids, one of which must fail with a `caught_as` verdict
    caught_as: tuple[Verdict, ...] = CAUGHT_AS
    pending: Pending | None = None


@dataclass(frozen=True)
class Target:
    name: str
    directory: Path
    spec: str
    requires: tuple[str, ...]  # programs that must be installed (nginx, haproxy, ...)
    mistakes: tuple[Mistake, ...]
    correct_pending: tuple[Pending, ...] = ()  # failures on today's main another branch fixes

    def missing(self) -> list[str]:
        """Required programs not found on PATH or in /usr/sbin."""
        return [p for p in self.requires if not (shutil.which(p) or Path("/usr/sbin", p).exists())]


@dataclass(frozen=True)
class Outcome:
    """What one run of one configuration (correct, or with one mistake) showed."""

    target: str
    mistake: str | None  # None: the correct configuration
    failures: tuple[str, ...]  # every failing case, as "verdict: case id -> outcome reason"
    catching: tuple[str, ...] = ()  # the failures that catch the mistake
    false_positives: tuple[str, ...] = ()
    elapsed_s: float = 0.0
    cases: int = 0
    failing: tuple[tuple[str, str], ...] = ()  # (probe or scenario id, failure) of each failure
    error: str | None = None  # the sandbox could not start (e.g. a spec key not on this branch)

    @property
    def caught(self) -> bool:
        return bool(self.catching)


def _text(entry: dict[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value:
        raise CorpusError(f"{where}: '{key}' must be a non-empty string", f"add {key}: ...")
    return value


def _pending(value: Any, where: str) -> Pending | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise CorpusError(f"{where}: 'pending' must be a mapping", "pending: {probe: ID, by: WHO}")
    return Pending(_text(value, "probe", where), _text(value, "by", where), value.get("why", ""))


def _mistake(entry: Any, where: str) -> Mistake:
    if not isinstance(entry, dict):
        raise CorpusError(f"{where}: a mistake must be a mapping", "see corpus/README.md")
    where = f"{where} ({entry.get('id', '?')})"
    raw_edits = entry.get("edits") or [
        {k: entry.get(k) for k in ("file", "old", "new") if k in entry}
    ]
    edits = tuple(
        Edit(_text(e, "file", where), _text(e, "old", where), str(e.get("new", "")))
        for e in raw_edits
    )
    catch = tuple(entry.get("catch") or ())
    pending = _pending(entry.get("pending"), where)
    unknown = [p for p in catch if p not in BY_ID]
    if unknown and (pending is None or pending.probe.split(" ", 1)[0] not in unknown):
        raise CorpusError(
            f"{where}: probe(s) {', '.join(unknown)} are not in the catalogue",
            "a probe not on main yet needs `pending: {probe: ID, by: ENGINEER}`",
        )
    if not catch:
        raise CorpusError(f"{where}: 'catch' names no probe", "catch: [probe.id, ...]")
    return Mistake(
        id=_text(entry, "id", where),
        what=_text(entry, "what", where),
        klass=_text(entry, "class", where),
        edits=edits,
        catch=catch,
        caught_as=tuple(entry.get("caught_as") or CAUGHT_AS),
        pending=pending,
    )


def load_target(directory: Path) -> Target:
    path = directory / MISTAKES_FILE
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict) or not isinstance(data.get("mistakes"), list):
        raise CorpusError(f"{path}: expected a mapping with a 'mistakes' list", "see README")
    correct = data.get("correct") or {}
    pendings = tuple(
        p for p in (_pending(e, f"{path}: correct") for e in correct.get("pending") or ()) if p
    )
    mistakes = tuple(_mistake(e, f"{path}: mistakes[{i}]") for i, e in enumerate(data["mistakes"]))
    ids = [m.id for m in mistakes]
    if len(set(ids)) != len(ids):
        raise CorpusError(f"{path}: mistake ids repeat", "give each mistake its own id")
    return Target(
        name=directory.name,
        directory=directory,
        spec=str(data.get("spec", "trustproof.yaml")),
        requires=tuple(data.get("requires") or ()),
        mistakes=mistakes,
        correct_pending=pendings,
    )


def targets(root: Path = CORPUS) -> list[Target]:
    """Every target of the corpus (a directory with a mistakes.yaml), by name."""
    return [load_target(d) for d in sorted(root.iterdir()) if (d / MISTAKES_FILE).is_file()]


def copy_target(target: Target, mistake: Mistake | None, destination: Path) -> Path:
    """The target copied to `destination` with `mistake` applied; the copy's spec path.
    Every edit's `old` text must occur exactly once in its file (else the corpus is stale)."""
    shutil.copytree(target.directory, destination, ignore=IGNORED)
    for edit in mistake.edits if mistake else ():
        path = destination / edit.file
        text = path.read_text()
        if text.count(edit.old) != 1:
            raise CorpusError(
                f"{target.name}/{edit.file}: the text of mistake "
                f"{mistake.id if mistake else '?'!r} occurs {text.count(edit.old)} times",
                "each `old` must occur exactly once in the correct file; update mistakes.yaml",
            )
        path.write_text(_replace(text, edit))
    return destination / target.spec


def _replace(text: str, edit: Edit) -> str:
    """`text` with `edit.old` replaced by `edit.new`; removing whole lines (`old` ends a line,
    `new` is empty) also removes their indentation."""
    start = text.index(edit.old)
    end = start + len(edit.old)
    if not edit.new and edit.old.endswith("\n"):
        line_start = text.rfind("\n", 0, start) + 1
        if not text[line_start:start].strip():
            start = line_start
    return text[:start] + edit.new + text[end:]


async def _run(spec: Path, run_dir: Path, select: Sequence[str], scenarios: bool) -> SuiteRun:
    async with Sandbox.from_file(spec, run_dir=run_dir) as sandbox:
        run = await run_suite(sandbox, choose(generate(sandbox.spec), select))
        if scenarios:
            ids = choose_scenarios(sandbox.spec, select, (), run.results)
            done = await run_scenarios(sandbox, run.results, ids=ids)
            run = SuiteRun(
                run.results,
                run.started_at,
                run.elapsed_s,
                run.stopped_early,
                run.counts,
                tuple(done),
            )
        return run


def family_of(probe: str) -> str:
    """The probe's family: from the catalogue, or for an id another branch adds, its layer's."""
    if probe in BY_ID:
        return BY_ID[probe].family
    return FAMILY_OF_LAYER.get(probe.split(".", 1)[0], probe)


def describe(item: CaseResult) -> str:
    result = item.result
    return f"{item.verdict}: {item.case.id} -> {result.outcome} {result.reason}".rstrip()


@dataclass
class Runner:
    """Runs configurations of the corpus in fresh directories under `work`."""

    work: Path
    scenarios: bool = False  # also the lifecycle/consistency scenarios (the benchmark's full run)
    _count: int = field(default=0, init=False)

    def run(self, target: Target, mistake: Mistake | None, select: Sequence[str] = ()) -> Outcome:
        self._count += 1
        where = self.work / f"{self._count:03d}-{target.name}-{mistake.id if mistake else 'ok'}"
        spec = copy_target(target, mistake, where / "config")
        start = time.perf_counter()
        try:
            run = asyncio.run(_run(spec, where / "run", select, self.scenarios))
        except TrustproofError as exc:  # not run: neither caught nor a pass
            lines = [x.strip() for x in str(exc).splitlines() if x.strip()]
            said = [x for x in lines if not x.startswith("hint:")]
            error = said[-1] if said else type(exc).__name__
            failure = f"error: {target.name} could not start: {error}"
            return Outcome(
                target.name,
                mistake.id if mistake else None,
                (failure,),
                false_positives=(failure,) if mistake is None else (),
                elapsed_s=time.perf_counter() - start,
                failing=(("sandbox", failure),),
                error=error,
            )
        elapsed = time.perf_counter() - start
        failing = [item for item in run.results if not item.ok]
        pairs = [(i.case.probe, describe(i)) for i in failing]
        pairs += [
            (s.id, f"{s.verdict}: scenario {s.id}: {s.summary}") for s in run.scenarios if not s.ok
        ]
        failures = tuple(text for _, text in pairs)
        if mistake is None:
            return Outcome(
                target.name, None, failures, (), failures, elapsed, len(run.results), tuple(pairs)
            )
        families = {family_of(p) for p in mistake.catch}
        catching = [
            describe(i)
            for i in failing
            if i.case.probe in mistake.catch and i.verdict in mistake.caught_as
        ]
        unrelated = [describe(i) for i in failing if family_of(i.case.probe) not in families]
        unrelated += [
            f"{s.verdict}: scenario {s.id}: {s.summary}"
            for s in run.scenarios
            if not s.ok and s.id not in mistake.catch
        ]
        return Outcome(
            target.name,
            mistake.id,
            failures,
            tuple(catching),
            tuple(unrelated),
            elapsed,
            len(run.results),
            tuple(pairs),
        )
