"""The commands that need no sandbox: `validate`, `plan`, `init`, `schema`, `probes` and
`policy test`. Thin like the rest of the command line: they parse, call the library, and render.
"""

from __future__ import annotations

import json
import random
import socket
import sys
from dataclasses import asdict
from importlib import resources
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from trustproof.catalogue import CATALOGUE, selected
from trustproof.cli.base import DEFAULT_SPEC, friendly, out, spec_argument
from trustproof.errors import Problem, SpecError
from trustproof.plan import Boundary, dependency_edges, expected_matrix
from trustproof.policy.offline import policy_test, render_text
from trustproof.scrub import scrub
from trustproof.spec import Spec, json_schema, load_spec

json_option = click.option(
    "--json", "as_json", is_flag=True, help="Machine-readable output on stdout (stable keys)."
)


@click.command()
@spec_argument
@json_option
@friendly
def validate(spec_file: Path, as_json: bool) -> None:
    """Check a spec; print every problem as FILE:LINE:COL: field: message."""
    try:
        spec = load_spec(spec_file)
    except SpecError as exc:
        if not as_json:
            raise
        click.echo(json.dumps({"valid": False, "problems": [_problem(p) for p in exc.problems]}))
        sys.exit(exc.exit_code)
    allows = sum(
        len(routes) for callers in spec.access.services.values() for routes in callers.values()
    )
    if as_json:
        counts = {
            "services": len(spec.services),
            "personas": len(spec.personas),
            "datastores": len(spec.datastores),
            "route_grants": allows,
        }
        summary = {"valid": True, "file": str(spec_file), "trust_domain": spec.trust_domain}
        click.echo(json.dumps({**summary, **counts}))
        return
    out.print(
        f"[green]✓[/] {spec_file}: valid — {_count(spec.services, 'service')}, "
        f"{_count(spec.personas, 'persona')}, {_count(spec.datastores, 'datastore')}, "
        + (f"{_dependencies(len(spec.dependencies))}, " if spec.dependencies else "")
        + f"{allows} expected route grants, trust domain {spec.trust_domain}"
    )


def _problem(problem: Problem) -> dict[str, Any]:
    return {
        "file": problem.file,
        "line": problem.line,
        "column": problem.column,
        "field": problem.path,
        "message": scrub(problem.message),
        "hint": scrub(problem.hint),
    }


@click.command()
def schema() -> None:
    """Print the JSON Schema of the spec (for editor completion and checks)."""
    click.echo(json.dumps(json_schema(), indent=2))


@click.command()
@friendly
def init() -> None:
    """Write a starter here: trustproof.yaml, its Cedar policy and a service that honours the
    contract — green on its first `trustproof run`."""
    starter = resources.files("trustproof.spec").joinpath("starter")
    targets = {
        Path(DEFAULT_SPEC): starter.joinpath("trustproof.yaml"),
        Path("policies/app.cedar"): starter.joinpath("app.cedar"),
        Path("app.py"): starter.joinpath("app.py"),
    }
    existing = [str(path) for path in targets if path.exists()]
    if existing:
        raise click.UsageError(f"refusing to overwrite {', '.join(existing)} (move it away first)")
    port = str(free_port())
    for path, source in targets.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("x", encoding="utf-8") as handle:
            handle.write(source.read_text(encoding="utf-8").replace(STARTER_PORT, port, 1))
        out.print(f"wrote {path}")
    out.print("next: `trustproof run` (green as written), then make app.py and the spec yours")


STARTER_PORT = "18080"
"""The port the packaged starter names (valid as shipped); `init` writes a free one instead."""
STARTER_PORTS = range(20000, 30000)
"""Where the starter's port is chosen: below Linux's ephemeral range (32768-60999), so that no
client connection is handed the port between `init` and `run`."""


def free_port(rng: random.Random | None = None, tries: int = 50) -> int:
    """A port of `STARTER_PORTS` nothing listens on right now (bound and released on 127.0.0.1)."""
    rng = rng or random.Random()  # noqa: S311 (a port, not a secret)
    for _ in range(tries):
        port = rng.choice(STARTER_PORTS)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise click.UsageError(f"no free port found in {tries} tries: set one in trustproof.yaml")


@click.command()
@json_option
def probes(as_json: bool) -> None:
    """List the probe catalogue: the ids a spec can select."""
    if as_json:
        rows = [{"id": i.id, "title": i.title, "family": i.family} for i in CATALOGUE]
        click.echo(json.dumps(rows))
        return
    table = Table("id", "what it checks", box=None)
    for info in CATALOGUE:
        table.add_row(info.id, info.title)
    out.print(table)


@click.command()
@spec_argument
@json_option
@friendly
def plan(spec_file: Path, as_json: bool) -> None:
    """Show the expected access matrix and the probes that will check it."""
    spec = load_spec(spec_file)
    if as_json:
        click.echo(json.dumps(plan_json(spec)))
        return
    _print_plan(spec)


def plan_json(spec: Spec) -> dict[str, Any]:
    """The expected matrix as data: every boundary, its operations and its cells."""
    matrix = expected_matrix(spec)
    boundaries = [
        {
            "name": b.name,
            "kind": b.kind,
            "enforcement": b.enforcement,
            "operations": list(b.operations),
            "cells": [
                {"caller": c.caller, "operation": c.operation, "allowed": c.allowed}
                for c in b.cells
            ],
        }
        for b in matrix
    ]
    cells = [cell for b in matrix for cell in b.cells]
    return {
        "boundaries": boundaries,
        "allowed": sum(1 for c in cells if c.allowed),
        "refused": sum(1 for c in cells if not c.allowed),
        "probes": list(selected(spec.probes.select, spec.probes.deselect)),
        "dependencies": [asdict(edge) for edge in dependency_edges(spec)],
    }


@click.group()
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


GRID_CALLERS = 8
"""Up to this many callers a boundary is drawn as a grid (operations x callers); beyond, as one
line per caller with what it may do — a grid of 25 columns truncates every name."""


def _print_plan(spec: Spec) -> None:
    total_allow = total_deny = 0
    for boundary in expected_matrix(spec):
        title = f"{boundary.kind} {boundary.name} — enforced by {boundary.enforcement}"
        if len(boundary.callers) <= GRID_CALLERS:
            _print_grid(boundary, title)
        else:
            _print_lines(boundary, title)
        allows = sum(cell.allowed for cell in boundary.cells)
        total_allow += allows
        total_deny += len(boundary.cells) - allows
    for edge in dependency_edges(spec):
        out.print(
            f"dependency {edge.dependency} ({edge.mode}, {edge.target}, {edge.served_by}) — "
            f"{edge.caller} reaches it only through its egress proxy, ${edge.variable}",
            highlight=False,
            markup=False,
        )
    chosen = selected(spec.probes.select, spec.probes.deselect)
    out.print(
        f"{total_allow} (caller, operation) pairs must be allowed and {total_deny} refused; "
        f"{len(chosen)} of {len(CATALOGUE)} probes selected."
    )


def _print_grid(boundary: Boundary, title: str) -> None:
    table = Table(title=title, title_justify="left")
    table.add_column("operation", no_wrap=True)
    for caller in boundary.callers:
        table.add_column(caller, justify="center", no_wrap=True)
    for op in boundary.operations:
        marks = [
            "[green]allow[/]" if boundary.allowed(caller, op) else "[dim]deny[/]"
            for caller in boundary.callers
        ]
        table.add_row(op, *marks)
    out.print(table)


def _print_lines(boundary: Boundary, title: str) -> None:
    out.print(f"[bold]{title}[/] ({len(boundary.operations)} operations)", highlight=False)
    for caller in boundary.callers:
        allowed = [op for op in boundary.operations if boundary.allowed(caller, op)]
        if not allowed:
            out.print(f"  {caller}: [dim]deny all[/]", soft_wrap=True)
        elif len(allowed) == len(boundary.operations):
            out.print(f"  {caller}: [green]allow all[/]", soft_wrap=True)
        else:
            out.print(f"  {caller}: [green]allow[/] {', '.join(allowed)}", soft_wrap=True)


def _dependencies(count: int) -> str:
    return f"{count} dependenc{'y' if count == 1 else 'ies'}"


def _count(items: Any, noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


COMMANDS: tuple[click.Command, ...] = (validate, schema, init, probes, plan, policy)
