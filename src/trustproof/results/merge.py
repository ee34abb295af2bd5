"""Joining the results of a sharded run (`trustproof run --shard K/N` on N runners) into the one
result a full run would have given: `trustproof report merge`.

Sans-I/O: `merge` takes the shards' `Results` (each named by where it was read from) and either
returns the whole run or raises a `ReportError` saying what is wrong, in which file, and what to
do. It refuses — a merge that quietly left a slice out would be a green gate over unchecked
cases — a result that is not a shard, shards of different splits (1/2 with 2/3) or of different
plans (their fingerprints differ: another spec, selection or trustproof version) or commits, the
same shard twice, a shard missing, and a case or scenario found in two shards or in a shard that
does not own it.

The merged run: every case and scenario of every shard (shard 1's first), verdict counts
summed, `stopped_early` if any shard stopped early, the earliest start, the longest shard as the
wall time (the shards run side by side) and the cases per second that gives; each shard's own
figures are kept in `merged_from`. Alerts raised in several shards are one alert (counts
summed), as are egress events. The gate is `Results.ok` of the merged run, as for a full run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

from trustproof.errors import ReportError
from trustproof.results.document import RESULTS_VERSION
from trustproof.results.model import AlertRecord, Results, ShardRecord
from trustproof.shard import Shard
from trustproof.view.egress import EgressEvent

__all__ = ["merge"]

_DOWNLOAD_HINT = (
    "pass the results.json (or run directory) of every shard of one pipeline; a shard job that "
    "failed still uploads its results when its upload step runs `if: always()` / `when: always`"
)


def merge(parts: Sequence[tuple[str, Results]]) -> Results:
    """The whole run the shards `parts` (source, results) make up; `ReportError` when they do
    not make up exactly one whole run."""
    if not parts:
        raise ReportError("nothing to merge", _DOWNLOAD_HINT)
    shards = _check(parts)
    ordered = sorted(zip(shards, parts, strict=True), key=lambda item: item[0].index)
    runs = [results for _, (_, results) in ordered]
    cases = tuple(case for run in runs for case in run.cases)
    wall = max(run.elapsed_s for run in runs)
    summary: Counter[str] = Counter()
    for run in runs:
        summary.update(run.summary)
    first = runs[0]
    return replace(
        first,
        version=RESULTS_VERSION,
        started_at=min(run.started_at for run in runs),
        elapsed_s=wall,
        cases_per_second=round(len(cases) / wall, 1) if wall else 0.0,
        stopped_early=any(run.stopped_early for run in runs),
        summary=dict(summary),
        cases=cases,
        scenarios=tuple(s for run in runs for s in run.scenarios),
        egress_events=_events(runs),
        alerts=_alerts(runs),
        shard=None,
        merged_from=tuple(
            ShardRecord(
                index=shard.index,
                total=shard.total,
                started_at=run.started_at,
                elapsed_s=run.elapsed_s,
                cases=len(run.cases),
                scenarios=len(run.scenarios),
                ok=run.ok,
            )
            for shard, (_, run) in ordered
        ),
    )


def _check(parts: Sequence[tuple[str, Results]]) -> list[Shard]:
    """Each part's shard, once every refusal has been ruled out."""
    shards = []
    for source, results in parts:
        if results.merged_from:
            raise ReportError(
                f"{source}: already a merged result (of {len(results.merged_from)} shards)",
                "merge the shards' own results.json, each once",
            )
        if results.shard is None:
            raise ReportError(
                f"{source}: not the result of a shard (its results.json has no `shard`)",
                "merge only the results of `trustproof run --shard K/N`; an unsharded run's "
                "results are already whole",
            )
        if results.fingerprint is None:
            raise ReportError(
                f"{source}: shard {results.shard} has no plan fingerprint",
                "it was written by a trustproof that cannot shard: run every shard with one "
                "trustproof version",
            )
        shards.append(results.shard)
    (first_source, first), first_shard = parts[0], shards[0]
    for (source, results), shard in zip(parts, shards, strict=True):
        if shard.total != first_shard.total:
            raise ReportError(
                f"{source} is shard {shard} but {first_source} is shard {first_shard}: shards of "
                "different splits",
                "run every shard of one pipeline with the same N in --shard K/N",
            )
        if results.fingerprint != first.fingerprint:
            raise ReportError(
                f"{source} (shard {shard}) and {first_source} (shard {first_shard}) come from "
                f"different plans: fingerprint {results.fingerprint} vs {first.fingerprint}",
                "merge shards of one pipeline: the same spec, the same selection options "
                "(--select, --deselect, --thorough, --no-chaos, --no-scenarios, backend) and the "
                "same trustproof version",
            )
        commit, first_commit = _commit(results), _commit(first)
        if commit and first_commit and commit != first_commit:
            raise ReportError(
                f"{source} (shard {shard}) ran commit {commit} but {first_source} (shard "
                f"{first_shard}) ran {first_commit}",
                "merge the shards of one pipeline run",
            )
    seen: dict[int, str] = {}
    for (source, _), shard in zip(parts, shards, strict=True):
        if shard.index in seen:
            raise ReportError(
                f"shard {shard} given twice: {seen[shard.index]} and {source}",
                "pass each shard's results once",
            )
        seen[shard.index] = source
    missing = [k for k in range(1, first_shard.total + 1) if k not in seen]
    if missing:
        noun = "shard" if len(missing) == 1 else "shards"
        raise ReportError(
            f"{noun} {', '.join(f'{k}/{first_shard.total}' for k in missing)} missing "
            f"(got {', '.join(f'{k}/{first_shard.total}' for k in sorted(seen))}): their cases "
            "would go unchecked",
            _DOWNLOAD_HINT,
        )
    _check_disjoint(parts, shards)
    return shards


def _check_disjoint(parts: Sequence[tuple[str, Results]], shards: Sequence[Shard]) -> None:
    """No case or scenario in two shards, nor in a shard that does not own its id."""
    owner: dict[str, tuple[str, Shard]] = {}
    for (source, results), shard in zip(parts, shards, strict=True):
        for what, item_id in _ids(results):
            if item_id in owner and owner[item_id][1] != shard:  # ids are unique in a plan
                other_source, other = owner[item_id]
                raise ReportError(
                    f"shards overlap: {what} {item_id!r} is in {other_source} (shard {other}) "
                    f"and in {source} (shard {shard})",
                    "merge the shards of one pipeline run, each once",
                )
            owner[item_id] = (source, shard)
    for (source, results), shard in zip(parts, shards, strict=True):
        for what, item_id in _ids(results):
            if not shard.owns(item_id):
                raise ReportError(
                    f"{source} (shard {shard}) holds {what} {item_id!r}, which is not in its "
                    "slice of the plan",
                    "merge the results as `trustproof run --shard K/N` wrote them",
                )


def _ids(results: Results) -> list[tuple[str, str]]:
    return [("case", c.id) for c in results.cases] + [("scenario", s.id) for s in results.scenarios]


def _commit(results: Results) -> str:
    return (results.context or {}).get("commit", "")


def _events(runs: Sequence[Results]) -> tuple[EgressEvent, ...]:
    counts: dict[tuple[str, str, str, int | None], EgressEvent] = {}
    for run in runs:
        for event in run.egress_events:
            key = (event.service, event.kind, event.destination, event.port)
            known = counts.get(key)
            counts[key] = (
                event if known is None else replace(known, count=known.count + event.count)
            )
    return tuple(counts.values())


def _alerts(runs: Sequence[Results]) -> tuple[AlertRecord, ...]:
    merged: dict[tuple[str, str], AlertRecord] = {}
    for run in runs:
        for alert in run.alerts:
            key = (alert.key, "") if alert.key else (alert.rule, alert.subject)
            known = merged.get(key)
            merged[key] = (
                alert if known is None else replace(known, count=known.count + alert.count)
            )
    return tuple(merged.values())
