"""`trustproof validate`: check a spec, print every problem as FILE:LINE:COL: field: message.

On its own module because it is the command run most often (pre-commit hooks, editors, the first
CI step): it imports the spec loader and nothing else — no rich, no plan, no policy engine.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sized
from pathlib import Path
from typing import Any

import click

from trustproof.cli.base import friendly, json_option, spec_argument
from trustproof.errors import Problem, SpecError
from trustproof.scrub import scrub
from trustproof.spec.load import load_spec


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
    click.echo(
        f"{click.style('✓', fg='green')} {spec_file}: valid — {_count(spec.services, 'service')}, "
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


def _dependencies(count: int) -> str:
    return f"{count} dependenc{'y' if count == 1 else 'ies'}"


def _count(items: Sized, noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


COMMANDS: tuple[click.Command, ...] = (validate,)
