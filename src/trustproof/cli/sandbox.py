"""The sandbox and suite commands: `up`, `down`, `status`, `token`, `cert`, `run`, `probe`,
`report`.

Thin like the rest of the command line: they parse, call `trustproof.sandbox` and
`trustproof.suite`, and render.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from trustproof.cli.base import F, err, friendly, out, run_dir_option, spec_argument
from trustproof.cli.control import _print_state
from trustproof.cli.progress import SuiteProgress
from trustproof.cli.sharding import shard_option
from trustproof.errors import TrustproofError, UsageError
from trustproof.loop import run as run_loop
from trustproof.probes.base import Plan
from trustproof.probes.egress import plan_note
from trustproof.report import FORMATS, append_step_summary, render, write_reports
from trustproof.results import Results, load
from trustproof.sandbox.choice import ENV as BACKEND_ENV
from trustproof.sandbox.choice import resolve_choice
from trustproof.sandbox.control import request as control_request
from trustproof.sandbox.controller import Sandbox
from trustproof.sandbox.lifecycle import down as stop_sandbox
from trustproof.sandbox.lifecycle import refuse_if_running, run_foreground, start_detached
from trustproof.sandbox.rundir import DEFAULT_RUN_DIR, RunDir
from trustproof.shard import Shard, shard_from_json
from trustproof.spec import load_spec
from trustproof.spec.model import Reports
from trustproof.suite.command import (
    chaos_on,
    check_chaos_selection,
    check_selection,
    suite_on,
    summary_lines,
)

backend_option = click.option(
    "--backend",
    type=click.Choice(["auto", "local", "isolated"]),
    default=None,
    help="Where the services run, over the spec's `backend` and TRUSTPROOF_BACKEND: isolated "
    "(each in its own network namespace, loopback only; root), local, or auto.",
)


def _choose_backend(backend: str | None) -> None:
    """`--backend` wins over TRUSTPROOF_BACKEND; set there, a detached controller gets it too."""
    if backend is not None:
        os.environ["TRUSTPROOF_BACKEND"] = backend


@click.command()
@spec_argument
@run_dir_option
@click.option("--detach", is_flag=True, help="Return once everything is ready; stop with `down`.")
@backend_option
@friendly
def up(spec_file: Path, run_dir: Path, detach: bool, backend: str | None = None) -> None:
    """Start the sandbox: fabric, datastores, gateways, egress proxies and your services."""
    load_spec(spec_file)  # a bad spec is exit 2 before anything starts
    _choose_backend(backend)
    if detach:
        state = start_detached(spec_file, run_dir)
        _print_state(state)
        out.print(f"running in the background; stop it with: trustproof down --run-dir {run_dir}")
        return

    def ready(sandbox: Sandbox) -> None:
        _print_state(sandbox.state())
        out.print("ready; Ctrl-C stops everything")

    run_loop(run_foreground(spec_file, run_dir, ready, _probe_for_control))


@click.command()
@run_dir_option
@friendly
def down(run_dir: Path) -> None:
    """Stop the sandbox and remove its key material (also after the controller was killed)."""
    forced = stop_sandbox(run_dir)
    for what in forced:
        err.print(f"killed leftover {what}")
    out.print(f"stopped; logs and audit kept in {run_dir.absolute()}")


select_options = [
    click.option(
        "--select",
        multiple=True,
        metavar="PATTERN",
        help="Only cases whose probe id or boundary matches (glob; repeatable).",
    ),
    click.option(
        "--deselect",
        multiple=True,
        metavar="PATTERN",
        help="Skip cases whose probe id or boundary matches (glob; repeatable).",
    ),
    click.option("--fail-fast", is_flag=True, help="Stop after the first failing verdict."),
    click.option(
        "--no-scenarios",
        is_flag=True,
        help="Only the cases: skip the multi-step scenarios (rotation, revocation, expiry, ...) "
        "and the trust-chaos experiments.",
    ),
]


def with_select_options(func: F) -> F:
    for option in reversed(select_options):
        func = option(func)
    return func


json_option = click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the results document (as results.json holds it) on stdout; the rest on stderr.",
)
report_dir_option = click.option(
    "--report-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the reports go, instead of the spec's `reports.dir` (default "
    "trustproof-reports/ beside the spec); the formats are the spec's `reports.formats`.",
)


@click.command()
@spec_argument
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_RUN_DIR.parent / "last-run",
    show_default=True,
    help="Where this run's logs, audit and results go.",
)
@with_select_options
@click.option(
    "--thorough",
    is_flag=True,
    help="Every refused cell for the path and request tricks (default: one per route and caller "
    "class of each service).",
)
@click.option(
    "--no-chaos",
    is_flag=True,
    help="Skip the trust-chaos experiments (the spec's `chaos:`, or the default set).",
)
@report_dir_option
@json_option
@backend_option
@shard_option
@friendly
def run(
    spec_file: Path,
    run_dir: Path,
    *,
    report_dir: Path | None,
    as_json: bool,
    select: tuple[str, ...],
    deselect: tuple[str, ...],
    fail_fast: bool,
    no_scenarios: bool,
    thorough: bool,
    no_chaos: bool = False,
    backend: str | None = None,
    shard: Shard | None = None,
) -> None:
    """Start the sandbox, prove every boundary, stop it; exit 1 if trust is broken.

    With --shard K/N, only shard K's slice (see `trustproof report merge`)."""
    spec = load_spec(spec_file)  # a bad spec is exit 2 before anything starts
    _choose_backend(backend)
    # The backend decides which cases exist (egress cases on the isolated one only): an empty
    # selection is exit 2 before anything starts, on the backend that will run it.
    kind = resolve_choice(os.environ.get(BACKEND_ENV) or None, spec.backend, lambda _: None)
    check_selection(spec, select, deselect, thorough=thorough, backend=kind)
    run = RunDir.create(run_dir)
    refuse_if_running(run)
    run.begin()  # the last run's logs, audit and results move to previous/: runs never mix

    async def main() -> tuple[Results, Path]:
        sandbox = Sandbox.from_file(spec_file, run_dir=run_dir)
        await sandbox.start()
        err.print(
            f"sandbox ready in {sum(sandbox.ready_seconds.values()):.2f} s of service "
            f"start-up ({sandbox.backend_kind} backend); running the suite"
        )
        note = plan_note(Plan.of(spec, backend=sandbox.backend_kind))
        if note is not None:
            err.print(note)
        try:
            return await _suite_with_progress(
                sandbox,
                select,
                deselect,
                fail_fast,
                scenarios=not no_scenarios,
                thorough=thorough,
                chaos=not no_chaos,
                shard=shard,
            )
        finally:
            await sandbox.stop()

    results, path = run_loop(main())
    _finish(
        results, path, report_dir, spec.reports, spec.resolve(spec.reports.dir), as_json=as_json
    )


@click.command()
@run_dir_option
@with_select_options
@report_dir_option
@json_option
@shard_option
@friendly
def probe(
    run_dir: Path,
    *,
    report_dir: Path | None,
    as_json: bool,
    select: tuple[str, ...],
    deselect: tuple[str, ...],
    fail_fast: bool,
    no_scenarios: bool,
    shard: Shard | None = None,
) -> None:
    """Run the suite against the sandbox started with `trustproof up --detach`."""
    socket_path = RunDir(run_dir.absolute()).control_socket
    body: dict[str, Any] = {
        "select": list(select),
        "deselect": list(deselect),
        "fail_fast": fail_fast,
        "scenarios": not no_scenarios,
    }
    if shard is not None:
        body["shard"] = shard.to_json()
    reply = run_loop(control_request(socket_path, "POST", "/probe", body, timeout=900))
    path = Path(reply["results"])
    results = load(path)
    reports, spec_dir = _reports_of(results)
    _finish(results, path, report_dir, reports, spec_dir, as_json=as_json)


@click.command()
@click.argument(
    "run_dir",
    metavar="RUN_DIR",
    default=DEFAULT_RUN_DIR.parent / "last-run",
    type=click.Path(path_type=Path),
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="md",
    show_default=True,
    help="junit (CI test reports), md (step summaries, PR comments), html (one self-contained "
    "page for people), json (canonical results), github (annotations on the spec's lines), "
    "codequality (GitLab Code Quality report).",
)
@click.option(
    "--out",
    "out_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to FILE instead of standard output.",
)
@friendly
def report(run_dir: Path, fmt: str, out_file: Path | None) -> None:
    """Render a report from a run's results.json (RUN_DIR, or the file itself)."""
    text = render(load(run_dir), fmt)
    if out_file is None:
        click.echo(text, nl=False)
        return
    if out_file.parent != Path():
        out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text(text, encoding="utf-8")
    err.print(f"wrote {out_file}", markup=False)


async def _probe_for_control(sandbox: Sandbox, body: dict[str, Any]) -> dict[str, Any]:
    """What the running controller does for `trustproof probe`."""
    try:
        results, path = await suite_on(
            sandbox,
            select=[str(p) for p in body.get("select", [])],
            deselect=[str(p) for p in body.get("deselect", [])],
            fail_fast=bool(body.get("fail_fast")),
            scenarios=bool(body.get("scenarios", True)),
            shard=shard_from_json(body.get("shard")),
        )
    except UsageError as exc:  # NothingToRun, or a shard that is not K/N
        return {"error": exc.message, "hint": exc.hint, "exit_code": exc.exit_code}
    return {"results": str(path), "ok": results.ok}


async def _suite_with_progress(
    sandbox: Sandbox,
    select: Sequence[str],
    deselect: Sequence[str],
    fail_fast: bool,
    *,
    scenarios: bool,
    thorough: bool = False,
    chaos: bool = True,
    shard: Shard | None = None,
) -> tuple[Results, Path]:
    verbose = bool((click.get_current_context().find_root().obj or {}).get("verbose"))
    with SuiteProgress(err, verbose=verbose) as progress:
        return await suite_on(
            sandbox,
            select=select,
            deselect=deselect,
            fail_fast=fail_fast,
            on_total=progress.on_total,
            on_result=progress.on_result,
            scenarios=scenarios,
            on_scenario=progress.on_scenario,
            thorough=thorough,
            chaos=chaos,
            shard=shard,
        )


def _reports_of(results: Results) -> tuple[Reports, Path | None]:
    """The ``reports:`` section of the spec a run's results name, and its resolved ``dir``
    (the defaults, and no dir, when that spec cannot be read any more)."""
    if results.spec:
        try:
            spec = load_spec(results.spec, policies=False)
        except TrustproofError:
            err.print(f"cannot read the spec {results.spec}: its `reports:` is not applied")
        else:
            return spec.reports, spec.resolve(spec.reports.dir)
    return Reports(), None


def _finish(
    results: Results,
    path: Path,
    report_dir: Path | None = None,
    reports: Reports | None = None,
    spec_report_dir: Path | None = None,
    *,
    as_json: bool = False,
) -> None:
    """Print the summary and the paths, write the reports (`--report-dir`, else the spec's
    ``reports.dir``, else ``reports/`` beside the results; the spec's formats), print GitHub
    annotations under GitHub Actions; exit 1 unless `results.ok`. With `as_json` the results
    document is the only thing on standard output (the rest goes to standard error)."""
    human = err if as_json else out
    for line in summary_lines(results):
        human.print(line, markup=False)
    human.print(f"results: {path}", markup=False)
    reports = reports or Reports()
    target = report_dir or spec_report_dir or path.parent / "reports"
    for written in write_reports(results, target, reports.formats).values():
        human.print(f"report:  {written}", markup=False)
    if os.environ.get("GITHUB_ACTIONS") == "true" and not results.ok:
        stream = sys.stderr if as_json else sys.stdout  # the runner reads commands from both
        stream.write(render(results, "github"))  # workflow commands: no markup, no wrapping
        stream.flush()
    try:
        summary = append_step_summary(results)
    except OSError as exc:  # a summary that cannot be written must not hide the verdict
        err.print(f"could not append to $GITHUB_STEP_SUMMARY: {exc}", markup=False)
    else:
        if summary is not None:
            human.print(f"summary appended to {summary}", markup=False)
    if as_json:
        sys.stdout.write(render(results, "json"))
        sys.stdout.flush()
    if not results.ok:
        human.print(
            f"[bold red]trust is broken: {len(results.failures)} case(s) disagree with the spec, "
            f"{len(results.failed_scenarios)} scenario(s) failed"
            f"{', the run stopped early' if results.stopped_early else ''}[/]"
        )
        sys.exit(1)
    human.print("[bold green]every boundary behaved as the spec says[/]")


@click.command()
@spec_argument
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_RUN_DIR.parent / "last-run",
    show_default=True,
    help="Where this run's logs, audit and results go.",
)
@click.option(
    "--select", multiple=True, metavar="PATTERN", help="Only experiments whose id matches (glob)."
)
@click.option(
    "--deselect", multiple=True, metavar="PATTERN", help="Skip experiments whose id matches."
)
@report_dir_option
@json_option
@friendly
def chaos(
    spec_file: Path,
    run_dir: Path,
    *,
    select: tuple[str, ...],
    deselect: tuple[str, ...],
    report_dir: Path | None,
    as_json: bool,
) -> None:
    """Start the sandbox, run only the trust-chaos experiments, stop it; exit 1 if one fails.

    Each experiment checks a sample of the access matrix, breaks one thing on purpose (the token
    service, a signing key, a gateway's clock, the policy, the audit log), checks what must
    happen meanwhile, undoes it and measures the recovery. The spec's `chaos:` section says
    which; without one a default set runs (`trustproof probes` lists the chaos.* ids)."""
    spec = load_spec(spec_file)
    check_chaos_selection(spec, select, deselect)  # an empty selection is exit 2, before a start
    run = RunDir.create(run_dir)
    refuse_if_running(run)
    run.begin()

    async def main() -> tuple[Results, Path]:
        sandbox = Sandbox.from_file(spec_file, run_dir=run_dir)
        await sandbox.start()
        err.print("sandbox ready; running the chaos experiments")
        try:
            return await chaos_on(
                sandbox,
                select=select,
                deselect=deselect,
                on_experiment=lambda sid: err.print(f"  {sid} ...", markup=False),
            )
        finally:
            await sandbox.stop()

    results, path = run_loop(main())
    _finish(
        results, path, report_dir, spec.reports, spec.resolve(spec.reports.dir), as_json=as_json
    )


COMMANDS: tuple[click.Command, ...] = (up, down, run, probe, report, chaos)
