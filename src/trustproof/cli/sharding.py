"""`--shard K/N` for `run` and `probe`: parsed by click into a `trustproof.shard.Shard`, so that
``0/3``, ``4/3``, ``x`` or ``1/0`` is a usage error (exit 2) naming what is wrong, before
anything starts."""

from __future__ import annotations

from typing import Any

import click

from trustproof.errors import UsageError
from trustproof.shard import Shard, parse


class ShardType(click.ParamType):  # type: ignore[type-arg]
    name = "K/N"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, Shard):
            return value
        try:
            return parse(str(value))
        except UsageError as exc:
            self.fail(f"{exc.message} (hint: {exc.hint})", param, ctx)


shard_option = click.option(
    "--shard",
    type=ShardType(),
    default=None,
    metavar="K/N",
    help="Run only shard K of N (1 <= K <= N): the cases, scenarios and chaos experiments whose "
    "ids hash to it, so that N runners (a CI matrix) together run everything once; join their "
    "results with `trustproof report merge`.",
)
