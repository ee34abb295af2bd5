"""The Cedar tokenizer and policy splitter that give every policy and error its position."""

from __future__ import annotations

from pathlib import Path

import cedarpy
import pytest
from hypothesis import given
from hypothesis import strategies as st
from policy_support import ROOT, SHOP_DIR

from trustproof.policy.lexer import Token, first_failure, position, split_policies, tokenize

TRICKY = (
    '@id("semi;colon") // a comment; with "quotes\n'
    "permit (principal, action, resource)\n"
    'when { principal.kind like "a;b\\"c//d" && context.hour_utc != -1 };\n'
    "// trailing comment; no policy here\n"
)


def test_semicolons_in_strings_and_comments_do_not_split() -> None:
    pieces = split_policies(TRICKY)
    assert len(pieces) == 1
    assert pieces[0].terminated
    assert TRICKY[pieces[0].start : pieces[0].end].endswith("-1 };")
    assert len(cedarpy.PolicySet.from_str(TRICKY[pieces[0].start : pieces[0].end])) == 1


def test_each_top_level_semicolon_splits() -> None:
    text = "permit (principal, action, resource);\nforbid (principal, action, resource);"
    assert [p.tokens[0].text for p in split_policies(text)] == ["permit", "forbid"]


def test_trailing_text_is_an_unterminated_piece() -> None:
    (done, rest) = split_policies("permit (principal, action, resource); permit (")
    assert done.terminated
    assert not rest.terminated


def test_comments_alone_make_no_piece() -> None:
    assert split_policies("// nothing\n\n  // here\n") == []


def test_tokens_keep_operators_and_annotations_whole() -> None:
    texts = [t.text for t in tokenize('@id("x") principal == ?principal && a::"b" || c != d')]
    assert texts == [
        *("@id", "(", '"x"', ")", "principal", "==", "?principal"),
        *("&&", "a", "::", '"b"', "||", "c", "!=", "d"),
    ]


def test_an_unterminated_string_runs_to_the_end() -> None:
    assert [t.text for t in tokenize('a "b;\nc')] == ["a", '"b;\nc']


def test_positions_are_one_based() -> None:
    text = "ab\ncd"
    assert position(text, 0) == (1, 1)
    assert position(text, 4) == (2, 2)


@pytest.mark.parametrize(
    "path",
    [
        SHOP_DIR / "policies" / "shop.cedar",
        ROOT / "src" / "trustproof" / "spec" / "starter" / "app.cedar",
    ],
    ids=["shop", "starter"],
)
def test_no_token_boundary_cuts_a_valid_policy_wrongly(path: Path) -> None:
    # What locating a syntax error relies on: every prefix of a valid policy that ends on a token
    # boundary is refused only for running out of input (a token cut in two would be refused as
    # an invalid token and be blamed for an error that is not there).
    text = path.read_text() + TRICKY
    for piece in split_policies(text):
        for token in piece.tokens[:-1]:
            with pytest.raises(ValueError, match=r"^unexpected end of input$"):
                cedarpy.PolicySet.from_str(text[piece.start : token.end])


def test_first_failure_finds_the_first_bad_token() -> None:
    text = "permit (principal oops, action, resource);"
    (piece,) = split_policies(text)

    def fails(prefix: str) -> bool:
        try:
            cedarpy.PolicySet.from_str(prefix)
        except ValueError as exc:
            return "end of input" not in str(exc)
        return False

    index = first_failure(text, piece.tokens, fails)
    assert piece.tokens[index].text == "oops"
    assert first_failure(text, piece.tokens, fails, "unexpected token `oops`") == index
    good = "permit (principal, action, resource);"
    assert first_failure(good, split_policies(good)[0].tokens, fails) == -1  # the twin


def split_by_tokens(text: str) -> list[tuple[int, int, bool, tuple[Token, ...]]]:
    """The split as the tokens say it (the reference the run-scanning split must equal)."""
    pieces: list[tuple[int, int, bool, tuple[Token, ...]]] = []
    current: list[Token] = []
    for token in tokenize(text):
        current.append(token)
        if token.text == ";":
            pieces.append((current[0].start, token.end, True, tuple(current)))
            current = []
    if current:
        pieces.append((current[0].start, current[-1].end, False, tuple(current)))
    return pieces


TRICKY_CHARACTERS = ['"', ";", "/", "\\", "\n", " ", "\t", "\u2003", "\x1c", "a", "(", ":", "="]


@given(
    st.lists(st.sampled_from([*TRICKY_CHARACTERS, "//", '"x;"', "permit", "@id"]), max_size=30).map(
        "".join
    )
)
def test_the_split_is_the_tokens_split(text: str) -> None:
    pieces = [(p.start, p.end, p.terminated, p.tokens) for p in split_policies(text)]
    assert pieces == split_by_tokens(text)


def test_the_split_matches_the_tokens_on_the_shop_and_tricky_text() -> None:
    text = (SHOP_DIR / "policies" / "shop.cedar").read_text() + TRICKY + 'permit ("open'
    pieces = [(p.start, p.end, p.terminated, p.tokens) for p in split_policies(text)]
    assert pieces == split_by_tokens(text)
    assert len(pieces) > 3
