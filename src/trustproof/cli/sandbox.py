"""The sandbox and suite commands: `up`, `down`, `status`, `token`, `cert`, `run`, `probe`,
`report`.

Thin like the rest of the command line: they parse, call `trustproof.sandbox` and
`trustproof.suite`, and render.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from trustproof.cli.base import F, err, friendly, out, spec_argument
from trustproof.errors import SandboxError
from trustproof.identity import x5t_s256
from trustproof.report import FORMATS, append_step_summary, render, write_reports
from trustproof.results import Results, load
from trustproof.sandbox.control import live_status
from trustproof.sandbox.control import request as control_request
from trustproof.sandbox.controller import Sandbox
from trustproof.sandbox.lifecycle import down as stop_sandbox
from trustproof.sandbox.lifecycle import refuse_if_running, run_foreground, start_detached
from trustproof.sandbox.rundir import DEFAULT_RUN_DIR, RunDir, private_dir
from trustproof.spec import load_spec
from trustproof.suite.command import NothingToRun, check_selection, suite_on, summary_lines

run_dir_option = click.option(
    "--run-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_RUN_DIR,
    show_default=True,
    help="Where the running sandbox keeps its state.",
)


@click.command()
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


@click.command()
@run_dir_option
@friendly
def down(run_dir: Path) -> None:
    """Stop the sandbox and remove its key material (also after the controller was killed)."""
    forced = stop_sandbox(run_dir)
    for what in forced:
        err.print(f"killed leftover {what}")
    out.print(f"stopped; logs and audit kept in {run_dir.absolute()}")


@click.command()
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


@click.command()
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


class _CertCommands(click.Group):
    """`cert NAME --out DIR` issues (the `issue` subcommand, implied); `cert revoke` revokes."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["issue", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_CertCommands)
def cert() -> None:
    """Certificates of the running sandbox: `cert NAME --out DIR` writes a fresh one;
    `cert revoke NAME` or `cert revoke --serial HEX` revokes one."""


@cert.command("issue")
@click.argument("name")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@run_dir_option
@friendly
def cert_issue(name: str, out_dir: Path, run_dir: Path) -> None:
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
        f"(serial {reply['serial']}, valid until {reply['not_after']})"
    )


@cert.command("revoke")
@click.argument("name", required=False)
@click.option("--serial", help="Revoke the certificate with this serial (hex, as `cert` prints).")
@run_dir_option
@friendly
def cert_revoke(name: str | None, serial: str | None, run_dir: Path) -> None:
    """Revoke workload NAME's current certificate (it is renewed at once) or the one with
    --serial: the CA's CRL is rewritten for every service and services with `reload:` are
    told; trustproof's gateways refuse it at once."""
    if (name is None) == (serial is None):
        raise click.UsageError("give either NAME or --serial, not both and not neither")
    socket_path = RunDir(run_dir.absolute()).control_socket
    body = {"name": name} if name is not None else {"serial": serial}
    reply = asyncio.run(control_request(socket_path, "POST", "/revoke", body))
    told = ", ".join(reply["reloaded"]) or "none"
    renewed = f"; {reply['renewed']} renewed" if reply.get("renewed") else ""
    out.print(
        f"revoked serial {', '.join(reply['serials'])}; services told to reload: {told}{renewed}"
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


report_dir_option = click.option(
    "--report-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where report.junit.xml, report.md and report.html go (default: <run-dir>/reports).",
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
@report_dir_option
@friendly
def run(
    spec_file: Path,
    run_dir: Path,
    *,
    report_dir: Path | None,
    select: tuple[str, ...],
    deselect: tuple[str, ...],
    fail_fast: bool,
    no_scenarios: bool,
) -> None:
    """Start the sandbox, prove every boundary, stop it; exit 1 if trust is broken."""
    spec = load_spec(spec_file)  # a bad spec is exit 2 before anything starts
    check_selection(spec, select, deselect)  # so is a selection that matches nothing
    refuse_if_running(RunDir.create(run_dir))

    async def main() -> tuple[Results, Path]:
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

    results, path = asyncio.run(main())
    _finish(results, path, report_dir)


@click.command()
@run_dir_option
@with_select_options
@report_dir_option
@friendly
def probe(
    run_dir: Path,
    *,
    report_dir: Path | None,
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
    _finish(load(path), path, report_dir)


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
    "page for people), json (canonical results).",
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
        )
    except NothingToRun as exc:
        return {"error": exc.message, "hint": exc.hint, "exit_code": exc.exit_code}
    return {"results": str(path), "ok": results.ok}


async def _suite_with_progress(
    sandbox: Sandbox,
    select: Sequence[str],
    deselect: Sequence[str],
    fail_fast: bool,
    *,
    scenarios: bool,
) -> tuple[Results, Path]:
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


def _finish(results: Results, path: Path, report_dir: Path | None = None) -> None:
    """Print the summary and the paths, write the reports; exit 1 unless `results.ok`."""
    for line in summary_lines(results):
        out.print(line, markup=False)
    out.print(f"results: {path}", markup=False)
    for written in write_reports(results, report_dir or path.parent / "reports").values():
        out.print(f"report:  {written}", markup=False)
    try:
        summary = append_step_summary(results)
    except OSError as exc:  # a summary that cannot be written must not hide the verdict
        err.print(f"could not append to $GITHUB_STEP_SUMMARY: {exc}", markup=False)
    else:
        if summary is not None:
            out.print(f"summary appended to {summary}", markup=False)
    if not results.ok:
        out.print(
            f"[bold red]trust is broken: {len(results.failures)} case(s) disagree with the spec, "
            f"{len(results.failed_scenarios)} scenario(s) failed"
            f"{', the run stopped early' if results.stopped_early else ''}[/]"
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


COMMANDS: tuple[click.Command, ...] = (up, down, status, token, cert, run, probe, report)
