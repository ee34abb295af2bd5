"""Cost per case as specs grow: generated specs at 1x, 4x and 16x the shop (issue 18, item 3).

Each size is a generated spec (`_scale_spec`: 3·√f services and personas, four routes each,
about 32·f Cedar policies, every service the same small program honouring the contract through
`trustproof.middleware`), written to a temporary directory. For each size, next to its same-run
reference:

* run          the sandbox of the spec and its suite in a child process, as ``trustproof run``
               does without the scenarios and on its event loop (`trustproof.loop`: uvloop where
               installed; ``TRUSTPROOF_LOOP=asyncio`` for asyncio's), on at most ``--max-cases``
               cases (every k-th case in generation order: the same mix of probes); the results
               document is built as ``trustproof run`` writes it. Figures: cases/s (the suite's
               own figure), time per case, the suite's CPU time per case in that process (steadier
               than wall time on a shared machine), and the child's peak RSS (``ru_maxrss``: the
               trustproof process with its in-process gateways; the services are other
               processes). Reference: the 1x figures of the same run (flat = the same time per
               case and memory at 16x).
* Cedar        µs per decision through `CedarPolicyEngine.decide` (the call the gateway makes; the
               decision cache off) over every cell of the matrix, with the policy slices warm —
               and the same engine without slicing (every policy evaluated). Reference: the shop's
               9 policies, same engine, measured alternating call by call with it (same load).
               Floor: the bare `cedarpy.is_authorized` call on the same request's slice with the
               same handles (policies, entities, schema; the context as a dict), alternating call
               by call with the engine's decision: what is left around the call is the gap.
* validate, plan, policy test
               wall time of each command as a user runs it (a fresh ``trustproof`` process), its
               CPU time (user + system: what the machine's other load does not inflate as much),
               and the in-process part (no interpreter start, no imports). Reference: the same
               commands on the shop in the same run.

Targets at the largest size: >= 500 cases/s, <= 250 MB, Cedar <= 100 µs per decision with 500
policies, validate/plan/policy test <= 1 s. The machine is shared: absolute figures are noisy, the
ratios to the references are what compares.

Run: ``.venv/bin/python benchmarks/scale.py [--sizes 1,4,16] [--quick | --offline] [--json
FILE]``. ``--quick`` skips the live runs above 1x, ``--offline`` all of them (Cedar and the
commands only). Every child is bounded in cases (``--max-cases``) and
time (RUN_TIMEOUT), every timing loop in count and time: about 5 minutes on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cedarpy
from _measure import MAX_SECONDS
from _scale_spec import Generated, generate

from trustproof.plan import expected_matrix
from trustproof.policy import AccessRequest, CedarPolicyEngine
from trustproof.policy.entities import ENTITY_TYPES, route_id
from trustproof.policy.offline import representative_request
from trustproof.policy.slicing import PolicySlicer
from trustproof.spec import load_spec
from trustproof.spec.model import Spec

SHOP = Path(__file__).resolve().parent.parent / "examples" / "shop" / "trustproof.yaml"
RUN_TIMEOUT = 240.0
MAX_CASES = 2000  # per live run, spread evenly over the generated cases (--max-cases)
COMMAND_TIMEOUT = 60.0
DECISIONS = 600  # per engine variant, bounded in time by _measure.MAX_SECONDS too
TARGETS = {"cases_per_second": 500.0, "peak_rss_mb": 250.0, "cedar_us": 100.0, "command_s": 1.0}

# The child: a sandbox of the spec, the suite on an evenly spread sample of at most MAX cases
# (every k-th case in generation order: the same mix of probes) on the event loop `trustproof run`
# uses (`trustproof.loop`: uvloop where installed, TRUSTPROOF_LOOP to choose), the results
# document built as `trustproof run` writes it; then its figures, the CPU time the suite took in
# that process (its gateways included: the services are other processes) and its own peak RSS as
# one JSON line.
CHILD = """
import json, math, resource, sys, time
from pathlib import Path
from trustproof import loop
from trustproof.sandbox.controller import Sandbox
from trustproof.suite.runner import generate, run_suite

async def main(spec, run_dir, limit):
    async with Sandbox.from_file(Path(spec), run_dir=Path(run_dir)) as sandbox:
        cases = generate(sandbox.spec)
        chosen = cases[:: max(1, math.ceil(len(cases) / limit))]
        cpu = time.process_time()
        run = await run_suite(sandbox, chosen)
        cpu = time.process_time() - cpu
        document = json.dumps(run.to_results(sandbox.spec).to_json())
    failing = [item.case.id for item in run.results if not item.ok]
    return {"generated": len(cases), "cases": len(chosen), "failing": len(failing),
            "failing_examples": failing[:5], "cases_per_second": run.cases_per_second,
            "suite_seconds": run.elapsed_s, "suite_cpu_seconds": cpu,
            "results_bytes": len(document)}

kind, _ = loop.choose()
figures = loop.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
figures["loop"] = kind
figures["peak_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print("SCALE-FIGURES " + json.dumps(figures))
"""


def live_run(generated: Generated, work: Path, max_cases: int) -> dict[str, Any]:
    run_dir = work / f"run-{generated.factor}"
    start = time.perf_counter()
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(generated.path), str(run_dir), str(max_cases)],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    wall = time.perf_counter() - start
    found = re.search(r"^SCALE-FIGURES (.*)$", child.stdout, re.MULTILINE)
    if found is None:
        tail = "\n".join(child.stderr.strip().splitlines()[-8:])
        raise SystemExit(f"the suite at {generated.factor}x failed ({child.returncode}):\n{tail}")
    figures: dict[str, Any] = json.loads(found[1])
    rate = figures["cases_per_second"]
    figures["ms_per_case"] = 1000.0 / rate if rate else 0.0
    figures["cpu_ms_per_case"] = 1000.0 * figures["suite_cpu_seconds"] / max(1, figures["cases"])
    figures["wall_seconds"] = wall
    figures["peak_rss_mb"] = figures.pop("peak_rss_kb") / 1024
    return figures


def matrix_requests(spec: Spec) -> list[AccessRequest]:
    return [
        representative_request(spec, cell.caller, boundary.name, cell.operation)
        for boundary in expected_matrix(spec)
        if boundary.kind == "service"
        for cell in boundary.cells
    ]


def paired(first: Callable[[int], object], second: Callable[[int], object]) -> tuple[float, float]:
    """Median µs per call of each, calls alternating (so both see the same machine load);
    bounded by DECISIONS pairs and _measure.MAX_SECONDS."""
    a: list[float] = []
    b: list[float] = []
    deadline = time.perf_counter() + MAX_SECONDS
    for i in range(DECISIONS):
        for func, samples in ((first, a), (second, b)):
            start = time.perf_counter_ns()
            func(i)
            samples.append((time.perf_counter_ns() - start) / 1000)
        if time.perf_counter() > deadline:
            break
    return statistics.median(a), statistics.median(b)


def cedar_figures(spec: Spec, shop: Spec) -> dict[str, Any]:
    requests, shop_requests = matrix_requests(spec), matrix_requests(shop)
    sliced = CedarPolicyEngine.from_spec(spec, cache_size=0)
    whole = CedarPolicyEngine.from_spec(spec, cache_size=0, slicer=None)
    reference = CedarPolicyEngine.from_spec(shop, cache_size=0)
    n, m = len(requests), len(shop_requests)
    first = time.perf_counter()
    for request in requests:  # warms the slices; each answer checked against the whole set
        a, b = sliced.decide(request), whole.decide(request)
        assert (a.allowed, a.reason) == (b.allowed, b.reason), request
    warm_up = time.perf_counter() - first
    for request in shop_requests:
        reference.decide(request)
    sliced_us, shop_us = paired(
        lambda i: sliced.decide(requests[i % n]), lambda i: reference.decide(shop_requests[i % m])
    )
    whole_us, shop_whole_us = paired(
        lambda i: whole.decide(requests[i % n]), lambda i: reference.decide(shop_requests[i % m])
    )
    floor = bare_calls(sliced, requests)
    floor_us, beside_floor_us = paired(floor, lambda i: sliced.decide(requests[i % n]))
    return {
        "policies": len(sliced.bundle.policies),
        "requests": n,
        "sliced_us": sliced_us,
        "shop_us": shop_us,
        "floor_us": floor_us,
        "sliced_us_beside_floor": beside_floor_us,
        "whole_us": whole_us,
        "shop_us_beside_whole": shop_whole_us,
        "first_pass_s": warm_up,
    }


def bare_calls(engine: CedarPolicyEngine, requests: list[AccessRequest]) -> Callable[[int], object]:
    """The i-th request as a bare `cedarpy.is_authorized` call with handles: its slice of the
    engine's policies, the engine's entity store and schema (the floor of a decision)."""
    schema = engine.bundle.schema
    assert schema is not None
    slicer = PolicySlicer(engine.bundle, engine.directory)
    entities = engine.directory.handle(schema)
    calls: list[tuple[dict[str, Any], cedarpy.PolicySet]] = []
    for r in requests:
        principal = (ENTITY_TYPES[r.principal_kind], r.principal)
        action, resource = ("Action", r.action), ("Route", route_id(r.service, r.route))
        query = {
            "principal": {"type": principal[0], "id": principal[1]},
            "action": {"type": "Action", "id": r.action},
            "resource": {"type": "Route", "id": resource[1]},
            "context": {
                "client_cert": r.client_cert,
                "source_ip": r.source_ip,
                "token_roles": list(r.token_roles),
                "hour_utc": r.hour_utc,
            },
        }
        calls.append((query, slicer.policy_set(principal, action, resource)))
    for (query, policies), request in zip(calls, requests, strict=True):
        bare = cedarpy.is_authorized(query, policies, entities, schema)
        assert bare.allowed == engine.decide(request).allowed, request
    n = len(calls)
    return lambda i: cedarpy.is_authorized(calls[i % n][0], calls[i % n][1], entities, schema)


def command_figures(path: Path) -> dict[str, float]:
    figures: dict[str, float] = {}
    for name, args in (
        ("validate", ["validate"]),
        ("plan", ["plan"]),
        ("policy test", ["policy", "test"]),
    ):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "trustproof", *args, str(path)],
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"trustproof {' '.join(args)} {path} failed:\n{done.stdout[-800:]}")
        figures[name] = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        figures[f"cpu {name}"] = (after.ru_utime - before.ru_utime) + (
            after.ru_stime - before.ru_stime
        )
    child = subprocess.run(
        [sys.executable, "-c", IN_PROCESS, str(path)],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    found = re.search(r"^SCALE-FIGURES (.*)$", child.stdout, re.MULTILINE)
    if found is None:
        raise SystemExit(f"timing {path} in process failed:\n{child.stderr[-800:]}")
    figures.update(json.loads(found[1]))
    return figures


# The work of validate, plan and policy test without interpreter start and imports, in a fresh
# process (nothing remembered from an earlier load of the same spec).
IN_PROCESS = """
import json, sys, time
from trustproof.plan import expected_matrix
from trustproof.policy.offline import check_matrix
from trustproof.spec import load_spec

start = time.perf_counter()
spec = load_spec(sys.argv[1])
loaded = time.perf_counter()
expected_matrix(spec)
planned = time.perf_counter()
assert check_matrix(spec).ok, "the generated policies disagree with the matrix"
tested = time.perf_counter()
print("SCALE-FIGURES " + json.dumps({
    "in-process load_spec": loaded - start,
    "in-process plan matrix": planned - loaded,
    "in-process policy test": tested - planned,
}))
"""


def measure(
    sizes: list[int], quick: bool, offline: bool, max_cases: int, work: Path
) -> dict[str, Any]:
    out: dict[str, Any] = {"reference": {}, "sizes": {}}
    shop = load_spec(SHOP)
    out["reference"]["shop_policies"] = len(CedarPolicyEngine.from_spec(shop).bundle.policies)
    out["reference"]["shop_commands"] = command_figures(SHOP)
    for factor in sizes:
        generated = generate(work / f"scale-{factor}x", factor)
        spec = load_spec(generated.path)
        row: dict[str, Any] = {
            "services": generated.services,
            "personas": generated.personas,
            "routes": generated.routes,
            "policies": generated.policies,
            "cedar": cedar_figures(spec, shop),
            "commands": command_figures(generated.path),
        }
        if not offline and (not quick or factor == 1):
            row["run"] = live_run(generated, work, max_cases)
        out["sizes"][factor] = row
        print(f"  measured {factor}x", file=sys.stderr, flush=True)
    return out


def report(figures: dict[str, Any]) -> None:
    sizes: dict[int, dict[str, Any]] = figures["sizes"]
    ref = figures["reference"]
    base = sizes.get(min(sizes)) if sizes else None
    print(
        f"{'size':>5} {'svc':>4} {'pers':>4} {'routes':>6} {'policies':>8} {'cases':>6}"
        f" {'cases/s':>8} {'ms/case':>8} {'vs 1x':>6} {'CPU ms':>7} {'vs 1x':>6}"
        f" {'peak MB':>8} {'vs 1x':>6}"
    )
    for factor, row in sizes.items():
        run = row.get("run")
        if run is None:
            live = f"{'-':>6} {'-':>8} {'-':>8} {'':>6} {'-':>7} {'':>6} {'-':>8} {'':>6}"
        else:
            base_run = base.get("run") if base else None
            per_case = run["ms_per_case"] / base_run["ms_per_case"] if base_run else 1.0
            cpu = run["cpu_ms_per_case"] / base_run["cpu_ms_per_case"] if base_run else 1.0
            memory = run["peak_rss_mb"] / base_run["peak_rss_mb"] if base_run else 1.0
            live = (
                f"{run['cases']:>6} {run['cases_per_second']:>8.0f} {run['ms_per_case']:>8.2f}"
                f" {per_case:>5.2f}x {run['cpu_ms_per_case']:>7.2f} {cpu:>5.2f}x"
                f" {run['peak_rss_mb']:>8.0f} {memory:>5.2f}x"
            )
        print(
            f"{factor:>4}x {row['services']:>4} {row['personas']:>4} {row['routes']:>6}"
            f" {row['policies']:>8} {live}"
        )
    _print_loops(sizes)
    for factor, row in sizes.items():
        run = row.get("run")
        if run and run["cases"] < run["generated"]:
            print(
                f"  {factor}x: {run['cases']} of {run['generated']} generated cases run (every"
                f" {run['generated'] / run['cases']:.1f}th: --max-cases)"
            )
        if run and run["failing"]:
            print(
                f"  {factor}x: {run['failing']} cases not pass, e.g."
                f" {', '.join(run['failing_examples'])}"
            )
    print(
        "\nCedar µs per decision (engine.decide, decision cache off), each measured alternating"
        f" call by call with the shop's {ref['shop_policies']} policies (the reference)"
    )
    print(
        f"{'size':>5} {'policies':>8} {'sliced µs':>10} {'shop µs':>8} {'vs shop':>8}"
        f" {'whole µs':>9} {'speed-up':>9} {'floor µs':>9} {'vs floor':>9} {'first pass s':>13}"
    )
    for factor, row in sizes.items():
        c = row["cedar"]
        print(
            f"{factor:>4}x {c['policies']:>8} {c['sliced_us']:>10.0f} {c['shop_us']:>8.0f}"
            f" {c['sliced_us'] / c['shop_us']:>7.2f}x {c['whole_us']:>9.0f}"
            f" {c['whole_us'] / c['sliced_us']:>8.1f}x {c['floor_us']:>9.0f}"
            f" {c['sliced_us_beside_floor'] / c['floor_us']:>8.2f}x {c['first_pass_s']:>13.2f}"
        )
    print(
        "  floor: the bare cedarpy.is_authorized call on the request's slice with the same"
        " handles, alternating call by call with the engine (vs floor: the engine beside it)"
    )
    names = [n for n in ref["shop_commands"] if not n.startswith("cpu ")]
    cpu = [n for n in ref["shop_commands"] if n.startswith("cpu ")]
    for title, keys in (
        ("seconds (fresh `trustproof` process; in-process = the work without start-up)", names),
        ("CPU seconds of the same processes (user + system)", cpu),
    ):
        print(f"\n{title}")
        print(f"{'':>5} " + " ".join(f"{n.removeprefix('cpu '):>22}" for n in keys))
        print(f"{'shop':>5} " + " ".join(f"{ref['shop_commands'][n]:>22.2f}" for n in keys))
        for factor, row in sizes.items():
            took = row["commands"]
            cells = [
                f"{took[n]:>13.2f} ({took[n] / max(ref['shop_commands'][n], 1e-6):>5.1f}x)"
                for n in keys
            ]
            print(f"{factor:>4}x " + " ".join(f"{c:>22}" for c in cells))
    if sizes:
        top, row = max(sizes), sizes[max(sizes)]
        print(f"\ntargets at {top}x:")
        run = row.get("run")
        if run:
            _target("cases/s", run["cases_per_second"], TARGETS["cases_per_second"], ">=")
            _target("peak RSS MB", run["peak_rss_mb"], TARGETS["peak_rss_mb"], "<=")
        _target(
            f"Cedar µs ({row['cedar']['policies']} policies)",
            row["cedar"]["sliced_us"],
            TARGETS["cedar_us"],
            "<=",
        )
        for name in ("validate", "plan", "policy test"):
            _target(f"{name} s", row["commands"][name], TARGETS["command_s"], "<=")
            _target(f"{name} CPU s", row["commands"][f"cpu {name}"], TARGETS["command_s"], "<=")


def _print_loops(sizes: dict[int, dict[str, Any]]) -> None:
    loops = {row["run"]["loop"] for row in sizes.values() if row.get("run")}
    if loops:
        print(f"  event loop: {', '.join(sorted(loops))}; CPU ms = the suite's process per case")


def _target(name: str, value: float, target: float, sense: str) -> None:
    met = value >= target if sense == ">=" else value <= target
    verdict = "met" if met else f"missed by {abs(value - target) / target:.0%}"
    print(f"  {name:<26} {value:>10.2f}  (target {sense} {target:g}: {verdict})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default="1,4,16", help="comma-separated factors (default 1,4,16)"
    )
    parser.add_argument("--quick", action="store_true", help="live runs at 1x only")
    parser.add_argument("--offline", action="store_true", help="no live runs at all")
    parser.add_argument(
        "--max-cases", type=int, default=MAX_CASES, help=f"cases per live run (default {MAX_CASES})"
    )
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()
    try:
        sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    except ValueError:
        parser.error(f"--sizes: comma-separated whole numbers, got {args.sizes!r}")
    if not sizes or min(sizes) < 1 or max(sizes) > 64:
        parser.error("--sizes: factors from 1 to 64")
    os.environ.setdefault("TRUSTPROOF_BACKEND", "local")
    with tempfile.TemporaryDirectory(prefix="trustproof-scale-") as tmp:
        figures = measure(sizes, args.quick, args.offline, args.max_cases, Path(tmp))
    report(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
