"""How spec problems are worded: field paths, "did you mean" hints and values as shown."""

from __future__ import annotations

import difflib
import typing

from trustproof.spec.values import shown

Path = tuple[str | int, ...]
CLOSE_MATCH_CHOICES = 300


def render_path(path: Path) -> str:
    """('services', 'orders', 'calls', 1) -> 'services.orders.calls[1]'.

    A key longer than 80 characters is shown cut short (keys may be up to a scalar's length)."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        shown_part = part if len(part) <= 80 else f"{part[:60]}...({len(part):,} characters)"
        out += f".{shown_part}" if out else shown_part
    return out


def did_you_mean(word: str, choices: typing.Iterable[str]) -> str:
    """A hint naming the closest known word, or listing the choices when none is close."""
    options = sorted(set(choices))
    # Past a few hundred choices the search costs more than it helps (thousands of mistyped
    # routes against thousands of declared ones took minutes): list the first few instead.
    close = (
        difflib.get_close_matches(word, options, n=1, cutoff=0.6)
        if len(options) <= CLOSE_MATCH_CHOICES
        else []
    )
    if close:
        return f"did you mean {close[0]!r}?"
    if not options:
        return ""
    listed = ", ".join(options[:12]) + (", ..." if len(options) > 12 else "")
    return f"expected one of: {listed}"


def describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, int | float):
        return f"the number {value}"
    return shown(value)
