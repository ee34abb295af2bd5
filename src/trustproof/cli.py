"""The `trustproof` command. Thin by design: it parses arguments, calls the library, and renders.

Exit codes: 0 success · 1 trust violations found · 2 bad spec or usage · 3 the environment could not
start · 70 internal error (a bug: please report it). Nothing reaches the terminal without passing
through the scrubber, and no traceback is ever shown for a user error.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable, Sequence
from functools import wraps
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import click
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from trustproof import __version__
from trustproof.catalogue import CATALOGUE, selected
from trustproof.errors import SandboxError, SpecError, TrustproofError
from trustproof.identity import x5t_s256
from trustproof.plan import expected_matrix
from trustproof.policy.offline import policy_test, render_text
from trustproof.sandbox.control import live_status
from trustproof.sandbox.control import request as control_request
from trustproof.sandbox.controller import Sandbox
from trustproof.sandbox.lifecycle import down as stop_sandbox
from trustproof.sandbox.lifecycle import refuse_if_running, run_foreground, start_detached
from trustproof.sandbox.rundir import DEFAULT_RUN_DIR, RunDir, private_dir
from trustproof.scrub import configure_logging, scrub
from trustproof.spec import Spec, json_schema, load_spec
from trustproof.suite.command import suite_on, summary_lines
from trustproof.suite.runner import SuiteRun

EXIT_INTERNAL = 70
DEFAULT_SPEC = "trustproof.yaml"
F = TypeVar("F", bound=Callable[..., Any])

# Not a terminal (CI logs, pipes): wide enough that URLs and paths are never cut.
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def friendly(func: F) -> F:
    """Turn trustproof errors into scrubbed messages and exit codes; never show a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SpecError as exc:
            err.print(scrub(exc.render()), markup=False)
            count = len(exc.problems)
            err.print(
                f"{count} problem{'s' if count != 1 else ''} found; nothing was started.",
                style="bold red",
            )
            sys.exit(exc.exit_code)
        except TrustproofError as exc:
            err.print(scrub(str(exc)), markup=False, style="red")
            sys.exit(exc.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:  # a bug: say so plainly, without secrets, and exit distinctly
            err.print(
                f"internal error: {type(exc).__name__}: {scrub(str(exc))}",
                markup=False,
                style="bold red",
            )
            err.print("this is a bug in trustproof; please report it with the command you ran")
            sys.exit(EXIT_INTERNAL)

    return wrapper  # type: ignore[return-value]


spec_argument = click.argument(
    "spec_file",
    metavar="FILE",
    default=DEFAULT_SPEC,
    type=click.Path(dir_okay=False, path_type=Path),
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="trustproof")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def cli(verbose: int) -> None:
    """Prove, in CI, that your services trust exactly who they should."""
    configure_logging(30 - 10 * min(verbose, 2))


@cli.command()
@spec_argument
@friendly
def validate(spec_file: Path) -> None:
    """Check a spec; print every problem as FILE:LINE:COL: field: message."""
    spec = load_spec(spec_file)
    allows = sum(
        len(routes) for callers in spec.access.services.values() for routes in callers.values()
    )
    out.print(
        f"[green]✓[/] {spec_file}: valid — {_count(spec.services, 'service')}, "
        f"{_count(spec.personas, 'persona')}, {_count(spec.datastores, 'datastore')}, "
        f"{allows} expected route grants, trust domain {spec.trust_domain}"
    )


@cli.command()
def schema() -> None:
    """Print the JSON Schema of the spec (for editor completion and checks)."""
    click.echo(json.dumps(json_schema(), indent=2))


@cli.command()
@friendly
def init() -> None:
    """Write a commented starter trustproof.yaml (and its policy file) here."""
    starter = resources.files("trustproof.spec").joinpath("starter")
    targets = {
        Path(DEFAULT_SPEC): starter.joinpath("trustproof.yaml"),
        Path("policies/app.cedar"): starter.joinpath("app.cedar"),
    }
    existing = [str(path) for path in targets if path.exists()]
    if existing:
        raise click.UsageError(f"refusing to overwrite {', '.join(existing)} (move it away first)")
    for path, source in targets.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("x", encoding="utf-8") as handle:
            handle.write(source.read_text(encoding="utf-8"))
        out.print(f"wrote {path}")
    out.print("next: edit trustproof.yaml, then run `trustproof validate`")


@cli.command()
def probes() -> None:
    """List the probe catalogue: the ids a spec can select."""
    table = Table("id", "what it checks", box=None)
    for info in CATALOGUE:
        table.add_row(info.id, info.title)
    out.print(table)


@cli.command()
@spec_argument
@friendly
def plan(spec_file: Path) -> None:
    """Show the expected access matrix and the probes that will check it."""
    spec = load_spec(spec_file)
    _print_plan(spec)


@cli.group()
def policy() -> None:
    """Check Cedar policies against the expected access matrix, offline."""


@policy.command("test")
@spec_argument
@friendly
def policy_test_command(spec_file: Path) -> None:
    """Evaluate every (caller, route) of the matrix against the policies; exit 1 on any
    over- or under-permission."""
    report, code = policy_test(spec_file)
    out.print(render_text(report), markup=False)
    sys.exit(code)


run_dir_option = click.option(
    "--run-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_RUN_DIR,
    show_default=True,
    help="Where the running sandbox keeps its state.",
)


@cli.command()
@spec_argument
@run_dir_option
@click.option("--detach", is_flag=True, help="Return once everything is ready; stop with `down`.")
@friendly
def up(spec_file: Path, run_dir: Path, detach: bool) -> None:
    """Start the sandbox: fabric, datastores, gateways, egress proxies and your services."""
    load_spec(spec_file)  # a bad spec is exit 2 before anything starts
    if detach:
        state = start_detached(spec_file, run_dir)
        _print_state(state)
        out.print(f"running in the background; stop it with: trustproof down --run-dir {run_dir}")
        return

    def ready(sandbox: Sandbox) -> None:
        _print_state(sandbox.state())
        out.print("ready; Ctrl-C stops everything")

    asyncio.run(run_foreground(spec_file, run_dir, ready, _probe_for_control))


@cli.command()
@run_dir_option
@friendly
def down(run_dir: Path) -> None:
    """Stop the sandbox and remove its key material (also after the controller was killed)."""
    forced = stop_sandbox(run_dir)
    for what in forced:
        err.print(f"killed leftover {what}")
    out.print(f"stopped; logs and audit kept in {run_dir.absolute()}")


@cli.command()
@run_dir_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (stable keys).")
@friendly
def status(run_dir: Path, as_json: bool) -> None:
    """What runs where: URLs, ports, pids, the discovery URL, the CA bundle, health."""
    run = RunDir(run_dir.absolute())
    try:
        state = asyncio.run(control_request(run.control_socket, "GET", "/status"))
    except SandboxError:
        saved = run.read_state()
        if saved is None:
            raise
        state = live_status(saved)
    if as_json:
        click.echo(json.dumps(state, indent=2, sort_keys=True))
        return
    _print_state(state)
    running = "running" if state.get("controller_running") else "NOT running"
    out.print(f"controller {state.get('controller_pid')}: {running}")


@cli.command()
@click.argument("name")
@click.option("--aud", "audience", required=True, help="The service the token is for.")
@click.option("--ttl", type=float, default=None, help="Lifetime in seconds.")
@click.option(
    "--bind",
    "bind_cert",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Bind the token to this certificate (PEM), as gateways require for "
    "workloads: use the cert.pem written by `trustproof cert`.",
)
@run_dir_option
@friendly
def token(
    name: str, audience: str, ttl: float | None, bind_cert: Path | None, run_dir: Path
) -> None:
    """Print a fresh access token for a persona or workload of the running sandbox."""
    socket_path = RunDir(run_dir.absolute()).control_socket
    body: dict[str, object] = {"name": name, "audience": audience, "ttl": ttl}
    if bind_cert is not None:
        body["cnf_x5t_s256"] = thumbprint_of_pem(bind_cert.read_bytes())
    reply = asyncio.run(control_request(socket_path, "POST", "/token", body))
    click.echo(reply["access_token"])


@cli.command()
@click.argument("name")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@run_dir_option
@friendly
def cert(name: str, out_dir: Path, run_dir: Path) -> None:
    """Write a fresh certificate, key (0600) and CA bundle for NAME into --out."""
    socket_path = RunDir(run_dir.absolute()).control_socket
    reply = asyncio.run(control_request(socket_path, "POST", "/cert", {"name": name}))
    private_dir(out_dir)
    (out_dir / "cert.pem").write_text(reply["cert_pem"])
    (out_dir / "bundle.pem").write_text(reply["bundle_pem"])
    key = out_dir / "key.pem"
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(reply["key_pem"])
    out.print(
        f"wrote {out_dir}/cert.pem, key.pem, bundle.pem for {reply['spiffe_id']} "
        f"(valid until {reply['not_after']})"
    )


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
        help="Only the cases: skip the multi-step scenarios (rotation, revocation, expiry, ...).",
    ),
]


def with_select_options(func: F) -> F:
    for option in reversed(select_options):
        func = option(func)
    return func


@cli.command()
@spec_argument
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_RUN_DIR.parent / "last-run",
    show_default=True,
    help="Where this run's logs, audit and results go.",
)
@with_select_options
@friendly
def run(
    spec_file: Path,
    run_dir: Path,
    *,
    select: tuple[str, ...],
    deselect: tuple[str, ...],
    fail_fast: bool,
    no_scenarios: bool,
) -> None:
    """Start the sandbox, prove every boundary, stop it; exit 1 if trust is broken."""
    load_spec(spec_file)  # a bad spec is exit 2 before anything starts
    refuse_if_running(RunDir.create(run_dir))

    async def main() -> tuple[SuiteRun, Path]:
        sandbox = Sandbox.from_file(spec_file, run_dir=run_dir)
        await sandbox.start()
        err.print(
            f"sandbox ready in {sum(sandbox.ready_seconds.values()):.2f} s of service "
            f"start-up; running the suite"
        )
        try:
            return await _suite_with_progress(
                sandbox, select, deselect, fail_fast, scenarios=not no_scenarios
            )
        finally:
            await sandbox.stop()

    _, path = asyncio.run(main())
    _finish(json.loads(path.read_text()), path)


@cli.command()
@run_dir_option
@with_select_options
@friendly
def probe(
    run_dir: Path,
    select: tuple[str, ...],
    deselect: tuple[str, ...],
    fail_fast: bool,
    no_scenarios: bool,
) -> None:
    """Run the suite against the sandbox started with `trustproof up --detach`."""
    socket_path = RunDir(run_dir.absolute()).control_socket
    body = {
        "select": list(select),
        "deselect": list(deselect),
        "fail_fast": fail_fast,
        "scenarios": not no_scenarios,
    }
    reply = asyncio.run(control_request(socket_path, "POST", "/probe", body, timeout=900))
    path = Path(reply["results"])
    _finish(json.loads(path.read_text()), path)


async def _probe_for_control(sandbox: Sandbox, body: dict[str, Any]) -> dict[str, Any]:
    """What the running controller does for `trustproof probe`."""
    run, path = await suite_on(
        sandbox,
        select=[str(p) for p in body.get("select", [])],
        deselect=[str(p) for p in body.get("deselect", [])],
        fail_fast=bool(body.get("fail_fast")),
        scenarios=bool(body.get("scenarios", True)),
    )
    return {"results": str(path), "ok": run.ok}


async def _suite_with_progress(
    sandbox: Sandbox,
    select: Sequence[str],
    deselect: Sequence[str],
    fail_fast: bool,
    *,
    scenarios: bool,
) -> tuple[SuiteRun, Path]:
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task("probing", total=None)
        return await suite_on(
            sandbox,
            select=select,
            deselect=deselect,
            fail_fast=fail_fast,
            on_total=lambda total: progress.update(task, total=total),
            on_result=lambda _: progress.advance(task),
            scenarios=scenarios,
            on_scenario=lambda sid: progress.update(task, description=f"scenario {sid}"),
        )


def _finish(data: dict[str, Any], path: Path) -> None:
    for line in summary_lines(data):
        out.print(line, markup=False)
    out.print(f"results: {path}")
    bad = [case for case in data["cases"] if case["verdict"] != "pass"]
    failed = [s for s in data.get("scenarios", []) if not s["ok"]]
    if bad or failed or data.get("stopped_early"):
        out.print(
            f"[bold red]trust is broken: {len(bad)} case(s) disagree with the spec, "
            f"{len(failed)} scenario(s) failed[/]"
        )
        sys.exit(1)
    out.print("[bold green]every boundary behaved as the spec says[/]")


def thumbprint_of_pem(pem: bytes) -> str:
    """The RFC 8705 thumbprint of the first certificate in a PEM file."""
    try:
        certificate = x509.load_pem_x509_certificates(pem)[0]
    except (ValueError, IndexError):
        raise click.BadParameter("expected a PEM certificate", param_hint="--bind") from None
    return x5t_s256(certificate.public_bytes(serialization.Encoding.DER))


def _print_state(state: dict[str, Any]) -> None:
    table = Table("name", "kind", "url", "direct / dsn", "pid", "health", box=None)
    for name, ep in state.get("endpoints", {}).items():
        pid = str(ep.get("pid") or "")
        if "running" in ep and ep.get("pid"):
            pid += "" if ep["running"] else " (exited)"
        health = {True: "[green]healthy[/]", False: "[red]failing[/]"}.get(ep.get("healthy"), "")
        table.add_row(
            name, ep["kind"], ep["url"], ep.get("direct_url") or ep.get("dsn", ""), pid, health
        )
    out.print(table)
    out.print(f"discovery: {state.get('discovery_url')}")
    out.print(f"CA bundle: {state.get('ca_bundle')}")
    out.print(f"run dir:   {state.get('run_dir')}")


def _print_plan(spec: Spec) -> None:
    total_allow = total_deny = 0
    for boundary in expected_matrix(spec):
        table = Table(
            title=f"{boundary.kind} {boundary.name} — enforced by {boundary.enforcement}",
            title_justify="left",
        )
        table.add_column("operation")
        for caller in boundary.callers:
            table.add_column(caller, justify="center")
        for op in boundary.operations:
            marks = [
                "[green]allow[/]" if boundary.allowed(caller, op) else "[dim]deny[/]"
                for caller in boundary.callers
            ]
            table.add_row(op, *marks)
        out.print(table)
        allows = sum(cell.allowed for cell in boundary.cells)
        total_allow += allows
        total_deny += len(boundary.cells) - allows
    chosen = selected(spec.probes.select, spec.probes.deselect)
    out.print(
        f"{total_allow} (caller, operation) pairs must be allowed and {total_deny} refused; "
        f"{len(chosen)} of {len(CATALOGUE)} probes selected."
    )


def _count(items: Any, noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def main() -> None:
    cli(prog_name="trustproof")
