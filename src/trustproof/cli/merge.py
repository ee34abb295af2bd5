"""`trustproof report`: render a run's report (`trustproof report [RUN_DIR] --format F`, the
command of `cli.sandbox`, loaded only when used) or join the shards of a sharded run
(`trustproof report merge`), which needs neither the sandbox nor the suite."""

from __future__ import annotations

import copy
import importlib
import sys
from pathlib import Path

import click

from trustproof.cli.base import friendly
from trustproof.report import FILES, append_step_summary, write_reports
from trustproof.results import Results, load, write
from trustproof.results.merge import merge as merge_shards
from trustproof.scrub import scrub

RENDER = "render"  # the default subcommand's name: `report RUN_DIR` is `report render RUN_DIR`


class _RenderContext(click.Context):
    """The rendering command's context: named `trustproof report`, not `trustproof report render`
    (its own name is left out of the path, with the space before it)."""

    @property
    def command_path(self) -> str:
        return super().command_path.rstrip()


class ReportGroup(click.Group):
    """`report merge ...` runs the subcommand; anything else (`report`, `report RUN_DIR
    --format junit`) is the rendering command, as it always was."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.list_commands(ctx) and args[0] not in ("-h", "--help")):
            args = [RENDER, *args]
        return super().parse_args(ctx, args)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return ["merge"]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name == "merge":
            return merge
        if cmd_name == RENDER:
            sandbox = importlib.import_module("trustproof.cli.sandbox")
            command: click.Command = copy.copy(sandbox.report)
            command.context_class = _RenderContext
            return command
        return None

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        return (None if name == RENDER else name), command, rest


@click.group(cls=ReportGroup, invoke_without_command=False)
def report() -> None:
    """Render a report from a run's results.json, or merge the shards of a sharded run.

    \b
    trustproof report [RUN_DIR] [--format FMT] [--out FILE]
        the report of one run (RUN_DIR: the run directory or its results.json; default
        .trustproof/last-run); `trustproof report RUN_DIR --help` lists the formats
    trustproof report merge RESULTS_OR_DIRS... [-o DIR]
        join the results of `trustproof run --shard K/N` into one report and one verdict
    (A run directory named `merge` is written ./merge.)
    """


@click.command()
@click.argument(
    "sources",
    metavar="RESULTS_OR_DIRS...",
    nargs=-1,
    required=True,
    type=click.Path(path_type=Path),
)
@click.option(
    "-o",
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("trustproof-reports"),
    show_default=True,
    help="Where the merged results.json and every report go.",
)
@friendly
def merge(sources: tuple[Path, ...], out_dir: Path) -> None:
    """Join the results of every shard (`trustproof run --shard K/N`) into one results.json and
    every report (JUnit, Markdown, HTML, Code Quality), with one verdict: exit 1 when trust is
    broken, as the full run would; exit 2, merging nothing, when a shard is missing, given
    twice, overlaps another, comes from another plan, or cannot be read.

    Each source is a shard's results.json or the directory holding it (a downloaded artifact:
    a directory with no results.json of its own is searched for them, one level deep)."""
    parts = [(str(path), load(path)) for path in _results_files(sources)]
    merged = merge_shards(parts)
    written = write_reports(merged, out_dir, tuple(f for f in FILES if f != "json"))
    written["json"] = write(merged, out_dir)  # scrubbed, 0600, atomically: as a run writes it
    for line in _summary(merged):
        click.echo(scrub(line))
    for fmt in FILES:
        click.echo(f"report:  {written[fmt]}")
    # No GitHub annotations here: each shard's `trustproof run` printed its own, once.
    try:
        summary = append_step_summary(merged)
    except OSError as exc:  # a summary that cannot be written must not hide the verdict
        click.echo(f"could not append to $GITHUB_STEP_SUMMARY: {exc}", err=True)
    else:
        if summary is not None:
            click.echo(f"summary appended to {summary}")
    if not merged.ok:
        click.secho(
            f"trust is broken: {len(merged.failures)} case(s) disagree with the spec, "
            f"{len(merged.failed_scenarios)} scenario(s) failed"
            f"{', a shard stopped early' if merged.stopped_early else ''}",
            fg="red",
            bold=True,
        )
        sys.exit(1)
    click.secho("every boundary behaved as the spec says", fg="green", bold=True)


def _results_files(sources: tuple[Path, ...]) -> list[Path]:
    """Each source as a results.json path: a file, a run directory, or a directory of them."""
    found: list[Path] = []
    for source in sources:
        if source.is_dir() and not (source / "results.json").exists():
            inner = sorted(source.glob("*/results.json"))
            found += inner or [source]  # none: `load` says there are no results here
        else:
            found.append(source)
    return found


def _summary(results: Results) -> list[str]:
    lines = [
        f"merged {len(results.merged_from)} shards: {len(results.cases)} cases, "
        f"{len(results.scenarios)} scenarios; the longest shard took {results.elapsed_s:.2f} s "
        f"({results.cases_per_second:.0f} cases/s together): "
        + ", ".join(f"{n} {verdict}" for verdict, n in sorted(results.summary.items()))
    ]
    for part in results.merged_from:
        lines.append(
            f"  shard {part.index}/{part.total}: {part.cases} cases, {part.scenarios} scenarios in "
            f"{part.elapsed_s:.2f} s — {'pass' if part.ok else 'FAIL'}"
        )
    for case in results.failures:
        lines.append(f"  {case.verdict.upper():12} {case.id}")
        lines.append(f"      expected {case.expected}; observed {case.observed} ({case.reason})")
    for scenario in results.failed_scenarios:
        lines.append(f"  {scenario.verdict.upper():12} {scenario.id}: {scenario.summary}")
    return lines


COMMANDS: tuple[click.Command, ...] = (report,)
