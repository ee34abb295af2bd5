"""Detection on stacks trustproof did not write: the misconfiguration corpus (``corpus/``).

For every target (nginx, HAProxy, uvicorn/FastAPI, gunicorn/Flask, ...) the correct
configuration runs the whole generated suite (every case, and the scenarios unless
``--no-scenarios``), then each seeded mistake runs in its own copy, again with the whole suite.
Per target it prints:

* caught/seeded    mistakes whose named probe failed with a "got through" verdict; the seeded
                   mistakes whose probe catches them and those marked ``pending`` (a known miss)
                   are counted apart, so today's figure and the one after the merge are both seen
* false positives  failures on the correct configuration (those another branch fixes, listed
                   under ``correct.pending``, counted apart), and failures of an unrelated probe
                   family on a mistake copy
* time             wall time of the target's runs (sandbox start, suite, stop)

Goal (issue 12): every seeded mistake caught, zero false positives. The harness is shared with
``tests/integration/test_detection_corpus.py``, which runs the mistake copies with only the
probes that must catch them. Loopback only; each run is one sandbox, bounded by the suite.
Run: ``.venv/bin/python benchmarks/detection.py [--target NAME] [--no-scenarios] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from corpus import harness  # noqa: E402


@dataclass
class Tally:
    target: str
    seeded: int = 0
    caught: int = 0
    seeded_pending: int = 0
    caught_pending: int = 0
    false_positives: int = 0
    false_positives_pending: int = 0
    elapsed_s: float = 0.0
    missed: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)


def measure(target: harness.Target, runner: harness.Runner, verbose: bool) -> Tally:
    tally = Tally(target.name)
    start = time.perf_counter()
    correct = runner.run(target, None)
    tolerated = {p.probe for p in target.correct_pending}
    for probe, failure in correct.failing:
        if probe in tolerated:
            tally.false_positives_pending += 1
        else:
            tally.false_positives += 1
            tally.details.append(f"false positive (correct config): {failure}")
    for mistake in target.mistakes:
        outcome = runner.run(target, mistake)
        pending = mistake.pending is not None
        tally.seeded_pending += pending
        tally.seeded += not pending
        if outcome.caught:
            tally.caught_pending += pending
            tally.caught += not pending
        else:
            why = f" [{mistake.pending.reason()}]" if pending else ""
            why += f" (not run: {outcome.error})" if outcome.error else ""
            tally.missed.append(mistake.id + why)
        # Failures the correct configuration has too were counted there (once), and those of
        # `correct.pending` probes are another branch's: a mistake copy adds only new ones.
        new = [
            f
            for probe, f in outcome.failing
            if f in outcome.false_positives and f not in correct.failures and probe not in tolerated
        ]
        tally.false_positives += len(new)
        tally.details += [f"false positive ({mistake.id}): {f}" for f in new]
        if verbose:
            state = "caught" if outcome.caught else "not run" if outcome.error else "MISSED"
            print(f"  {mistake.id}: {state} ({outcome.elapsed_s:.1f} s)", flush=True)
    tally.elapsed_s = time.perf_counter() - start
    return tally


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", action="append", default=[], help="only this target")
    parser.add_argument("--no-scenarios", action="store_true", help="cases only (faster)")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    parser.add_argument("-v", "--verbose", action="store_true", help="each mistake as it runs")
    args = parser.parse_args()
    chosen = [t for t in harness.targets() if not args.target or t.name in args.target]
    missing = {t.name: t.missing() for t in chosen if t.missing()}
    if missing:
        sys.exit(f"detection: programs not installed: {missing} (make setup installs them)")
    tallies = []
    with tempfile.TemporaryDirectory(prefix="detection-") as work:
        runner = harness.Runner(Path(work), scenarios=not args.no_scenarios)
        for target in chosen:
            print(f"== {target.name}", flush=True)
            tallies.append(measure(target, runner, args.verbose))
    header = (
        f"{'target':18} {'caught/seeded':>13} {'pending':>9} {'false pos.':>10}"
        f" {'fp pending':>10} {'time s':>7}"
    )
    print("\n" + header)
    for t in tallies:
        print(
            f"{t.target:18} {f'{t.caught}/{t.seeded}':>13} "
            f"{f'{t.caught_pending}/{t.seeded_pending}':>9} {t.false_positives:>10}"
            f" {t.false_positives_pending:>10} {t.elapsed_s:>7.1f}"
        )
    total = Tally(
        "total",
        seeded=sum(t.seeded for t in tallies),
        caught=sum(t.caught for t in tallies),
        seeded_pending=sum(t.seeded_pending for t in tallies),
        caught_pending=sum(t.caught_pending for t in tallies),
        false_positives=sum(t.false_positives for t in tallies),
        false_positives_pending=sum(t.false_positives_pending for t in tallies),
        elapsed_s=sum(t.elapsed_s for t in tallies),
    )
    print(
        f"{'total':18} {f'{total.caught}/{total.seeded}':>13} "
        f"{f'{total.caught_pending}/{total.seeded_pending}':>9} {total.false_positives:>10}"
        f" {total.false_positives_pending:>10} {total.elapsed_s:>7.1f}"
    )
    print(
        "\ncaught/seeded: mistakes whose probe is on this branch; pending: those marked pending"
        " (caught/seeded); fp pending: correct-config failures another branch fixes"
    )
    for t in tallies:
        for line in [*(f"missed: {m}" for m in t.missed), *t.details]:
            print(f"{t.target}: {line}")
    if args.json:
        args.json.write_text(json.dumps([asdict(t) for t in [*tallies, total]], indent=2))


if __name__ == "__main__":
    main()
