"""Cedar text cut into tokens and single policies, so that every problem gets a file position.

Cedar (through cedarpy) reports parse errors without a position ("unexpected token `oops`") and
names policies by their order in the text (``policy0``, ``policy1``, ...). trustproof therefore
splits each policy file itself and hands Cedar one policy at a time:

* The tokenizer knows just enough of Cedar's lexical syntax to never cut a token in two: ``//``
  comments, ``"..."`` strings with backslash escapes (possibly spanning lines), words, ``@id`` and
  ``?principal``, and the two-character operators. Everything else is a one-character token.
* A policy ends at a ``;`` outside strings and comments: Cedar's grammar has no other ``;``
  (``annotations effect ( scope ) conditions ;``), so the split is exact for any text Cedar would
  accept, and for text it would not, each piece still starts where a policy was meant to start.
  The split scans the text in runs (a string, a comment, a ``;``, or everything up to the next of
  those), not token by token: a policy's tokens are made only when a problem needs them.
* `first_failure` finds where a syntax error is. Every prefix of a valid policy fails only with
  "unexpected end of input"; the shortest prefix that fails with something else ends at the
  first bad token.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple

_TOKEN = re.compile(
    r"""
      (?P<space>\s+)
    | (?P<comment>//[^\n]*)
    | (?P<string>"(?:[^"\\]|\\.)*"?)          # an unterminated string runs to the end
    | (?P<word>[@?]?[A-Za-z0-9_]+)
    | (?P<operator>::|==|!=|<=|>=|&&|\|\|)
    | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)


# What the split needs to tell apart: a string (quoted ``;`` and ``//`` are not Cedar's), a
# comment, a ``;``, and everything else in runs (a ``/`` alone: it may start a comment).
_RUN = re.compile(r'"(?:[^"\\]|\\.)*"?|//[^\n]*|;|[^";/]+|/', re.DOTALL)


class Token(NamedTuple):  # a tuple: a 512-policy file has tens of thousands of tokens
    start: int  # offsets into the whole text
    end: int
    text: str


@dataclass(frozen=True)
class Piece:
    """One policy's worth of `text`: from its first token to its ``;`` (or to the end of the
    text). `terminated` is false for trailing text that never reached a ``;``. `tokens` are made
    on first use (locating a problem), from the piece's stretch of the text only.
    """

    text: str = field(repr=False)  # the whole text the offsets are into
    start: int
    end: int
    terminated: bool

    @cached_property
    def tokens(self) -> tuple[Token, ...]:
        return tuple(tokenize(self.text, self.start, self.end))


def tokenize(text: str, start: int = 0, end: int | None = None) -> list[Token]:
    """The significant tokens of `text` (no whitespace, no comments), or of its stretch from
    offset `start` to `end` (which must fall on token boundaries); offsets into `text`."""
    skip = ("space", "comment")
    return [
        Token(match.start(), match.end(), match.group())
        for match in _TOKEN.finditer(text, start, len(text) if end is None else end)
        if match.lastgroup not in skip
    ]


def split_policies(text: str) -> list[Piece]:
    """`text` cut after every top-level ``;``; comment-only stretches produce no piece."""
    pieces: list[Piece] = []
    start = -1  # where the current piece's first token starts (-1: none yet)
    last = 0  # where its last token so far ends
    for run in _RUN.finditer(text):
        chunk = run.group()
        if chunk.startswith("//"):
            continue
        if chunk == ";":
            pieces.append(Piece(text, run.start() if start < 0 else start, run.end(), True))
            start = -1
            continue
        if chunk.startswith('"'):
            first, last = run.start(), run.end()
        else:
            stripped = chunk.lstrip()
            if not stripped:
                continue
            first = run.start() + len(chunk) - len(stripped)
            last = run.start() + len(chunk.rstrip())
        if start < 0:
            start = first
    if start >= 0:
        pieces.append(Piece(text, start, last, False))
    return pieces


def position(text: str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of `offset` in `text`."""
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


def first_failure(
    text: str, tokens: tuple[Token, ...], fails: Callable[[str], bool], message: str = ""
) -> int:
    """Index of the first token at which the prefix of `text` ending there `fails`, or -1.

    `fails(prefix)` says "the parser rejects this prefix for a reason other than running out of
    input". The prefixes start at the first token, so `text` may be a whole file and `tokens` one
    piece. Tokens that `message` quotes (``unexpected token `=```) are tried first, then every
    token in order: Cedar's parser recovers from errors and reports one of several, so whether a
    prefix fails is not monotone and a binary search would land in the wrong place.
    """
    if not tokens:
        return -1
    begin = tokens[0].start
    fragments = set(quoted(message))
    suspects: list[int] = [i for i, token in enumerate(tokens) if token.text in fragments]
    order: list[int] = [*suspects, *range(len(tokens))]
    for index in order:
        if fails(text[begin : tokens[index].end]):
            return index
    return -1


def quoted(message: str) -> list[str]:
    """The fragments an error message quotes in backticks, e.g. ``unexpected token `oops```."""
    return [str(fragment) for fragment in re.findall(r"`([^`]+)`", message)]
