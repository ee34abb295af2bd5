"""The misconfiguration corpus (``corpus/``): servers trustproof did not write, each in a correct
configuration that must pass and in copies with one seeded trust mistake that the named probe
must catch (``corpus/<target>/mistakes.yaml``; the harness is ``corpus/harness.py``).

Every correct configuration runs its whole generated suite (the cases; the scenarios are the
benchmark's, ``benchmarks/detection.py``). Each mistake copy runs only the probes that must catch
it, to keep CI time in budget. A mistake whose probe (or probe variant) is not on main yet is
skipped with ``pending: <probe> (<engineer>)``; a correct configuration's failures that another
branch fixes are listed under ``correct.pending`` and tolerated for those probes only.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from corpus import harness  # noqa: E402

TARGETS = harness.targets()
MISTAKES = [(t, m) for t in TARGETS for m in t.mistakes]


def needs(target: harness.Target) -> None:
    """Skip only where the programs cannot be installed (not root); as root, `make test`'s
    bootstrap installs them, so a missing one is a failure."""
    missing = target.missing()
    if missing and os.geteuid() != 0:
        pytest.skip(f"not installed and not root: apt-get install -y {' '.join(missing)}")
    assert not missing, f"{missing} not installed; `make test` (scripts/bootstrap.sh) installs them"


def test_the_corpus_has_every_target_and_five_mistakes_each() -> None:
    names = {t.name for t in TARGETS}
    assert {"nginx", "haproxy", "uvicorn-fastapi", "gunicorn-flask", "postgres"} <= names
    for target in TARGETS:
        assert len(target.mistakes) >= 5, target.name


def test_every_mistake_applies_to_its_correct_configuration(tmp_path: Path) -> None:
    """Each mistake's texts occur exactly once in the correct files and change them."""
    for target in TARGETS:
        for mistake in target.mistakes:
            copy = harness.copy_target(target, mistake, tmp_path / target.name / mistake.id)
            changed = [
                e.file
                for e in mistake.edits
                if (copy.parent / e.file).read_text() != (target.directory / e.file).read_text()
            ]
            assert changed == [e.file for e in mistake.edits], (target.name, mistake.id)


def test_a_stale_mistake_is_a_clear_error(tmp_path: Path) -> None:
    target = TARGETS[0]
    stale = harness.Mistake(
        "stale",
        "text that is not there",
        "test",
        (harness.Edit(target.spec, "NOPE", "x"),),
        ("authz.outside-matrix",),
    )
    with pytest.raises(harness.CorpusError, match="occurs 0 times"):
        harness.copy_target(target, stale, tmp_path / "copy")


@pytest.fixture(scope="module")
def runner() -> Iterator[harness.Runner]:
    with tempfile.TemporaryDirectory(prefix="corpus-") as work:
        yield harness.Runner(Path(work))


@pytest.mark.integration
@pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])
def test_the_correct_configuration_passes(target: harness.Target, runner: harness.Runner) -> None:
    needs(target)
    outcome = runner.run(target, None)
    assert outcome.cases > 0
    tolerated = {p.probe for p in target.correct_pending}
    unexpected = [f for probe, f in outcome.failing if probe not in tolerated]
    assert unexpected == []


@pytest.mark.integration
@pytest.mark.parametrize(
    ("target", "mistake"), MISTAKES, ids=[f"{t.name}-{m.id}" for t, m in MISTAKES]
)
def test_the_seeded_mistake_is_caught(
    target: harness.Target, mistake: harness.Mistake, runner: harness.Runner
) -> None:
    if mistake.pending is not None:
        pytest.skip(mistake.pending.reason())
    needs(target)
    outcome = runner.run(target, mistake, select=mistake.catch)
    assert outcome.caught, f"{mistake.id} missed; failures: {list(outcome.failures)}"
    assert outcome.false_positives == ()
