"""The `trustproof` command. Thin by design: it parses arguments, calls the library, and renders.

Exit codes: 0 success · 1 trust violations found · 2 bad spec or usage · 3 the environment could not
start · 70 internal error (a bug: please report it). Nothing reaches the terminal without passing
through the scrubber, and no traceback is ever shown for a user error.

One module per group of commands, each importing only `cli.base`; this module builds the group
from them (no module of the package imports this one, so there is no import cycle):

* `cli.offline` — what needs no sandbox: `validate`, `plan`, `init`, `schema`, `probes`,
  `policy test`;
* `cli.sandbox` — the sandbox and the suite: `up`, `down`, `status`, `token`, `cert`, `run`,
  `probe`, `report`.
"""

from __future__ import annotations

import click

from trustproof import __version__
from trustproof.cli import offline
from trustproof.cli.base import EXIT_INTERNAL
from trustproof.scrub import configure_logging

__all__ = ["EXIT_INTERNAL", "cli", "main"]


class _Commands(click.Group):
    """The sandbox and suite commands (`cli.sandbox`) are imported when first named or listed:
    `validate` and the other offline commands start without aiohttp, psycopg and the sandbox
    (importing those took most of the 2 s that `validate` of the shop used to take)."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and _add_sandbox_commands(self):
            command = super().get_command(ctx, cmd_name)
        return command

    def list_commands(self, ctx: click.Context) -> list[str]:
        _add_sandbox_commands(self)
        return super().list_commands(ctx)


def _add_sandbox_commands(group: click.Group) -> bool:
    """Add `cli.sandbox`'s commands once; False when they were there already."""
    if "up" in group.commands:
        return False
    from trustproof.cli import sandbox  # noqa: PLC0415  (deferred on purpose, see _Commands)

    for command in sandbox.COMMANDS:
        group.add_command(command)
    return True


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="trustproof")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def cli(verbose: int) -> None:
    """Prove, in CI, that your services trust exactly who they should."""
    configure_logging(30 - 10 * min(verbose, 2))


for _command in offline.COMMANDS:
    cli.add_command(_command)


def main() -> None:
    cli(prog_name="trustproof")
