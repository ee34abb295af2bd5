"""`trustproof import compose FILE [-o OUT]`: a draft spec from a Docker Compose file
(`trustproof.spec.from_compose`); never overwrites."""

from __future__ import annotations

from pathlib import Path

import click

from trustproof.cli.base import friendly, out

MAX_COMPOSE_BYTES = 1 << 20


@click.group("import")
def import_() -> None:
    """Draft a trustproof.yaml from what a project already has."""


@import_.command("compose")
@click.argument(
    "compose_file", type=click.Path(dir_okay=False, path_type=Path), default="docker-compose.yml"
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("trustproof.yaml"),
    show_default=True,
    help="Where the draft goes (never overwritten).",
)
@friendly
def compose(compose_file: Path, output: Path) -> None:
    """Write a draft spec from a compose file: services with their images, ports, environment,
    depends_on as calls and healthchecks as hints; PostgreSQL as a datastore. The trust domain,
    who may call what, the policies and the routes are TODOs to fill in."""
    from trustproof.spec.from_compose import draft_from_compose  # noqa: PLC0415 (lazy CLI)

    if output.exists():
        raise click.UsageError(f"refusing to overwrite {output} (move it away or pass -o)")
    try:
        with compose_file.open("rb") as handle:
            raw = handle.read(MAX_COMPOSE_BYTES + 1)
    except OSError as exc:
        raise click.UsageError(f"cannot read {compose_file}: {exc.strerror}") from None
    if len(raw) > MAX_COMPOSE_BYTES:
        raise click.UsageError(f"{compose_file} is larger than {MAX_COMPOSE_BYTES} bytes")
    project = compose_file.absolute().parent.name or "app"
    draft = draft_from_compose(raw.decode("utf-8", "replace"), str(compose_file), project)
    with output.open("x", encoding="utf-8") as handle:
        handle.write(draft)
    out.print(f"wrote {output}: a draft; fill in its TODOs, then `trustproof validate {output}`")


COMMANDS: tuple[click.Command, ...] = (import_,)
