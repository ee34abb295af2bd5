"""Property tests of the gateway's path canonicaliser (`trustproof.gateway.paths`).

The decision is made on the canonical path and exactly that path is forwarded, so the
canonicaliser must be total (a result for every string), agree with the documented rules, refuse
every encoding trick outright, and be a fixed point on what it forwards."""

from __future__ import annotations

from fuzzkit import kept_if_failing, narrow
from hypothesis import given
from hypothesis import strategies as st
from paths_oracle import check_target

from trustproof.gateway.paths import BadTarget, canonicalize

SEGMENTS = [
    *["", ".", "..", "%2e", "%2E", "%2e%2e", ".%2E", "%2e.", "...", "a", "B", "orders", "42"],
    *["%41", "%7e", "~", "%2f", "%2F", "%5c", "%5C", "%00", "%25", "%252e", "%252f", "%", "%4"],
    *["%g1", "%C3%A9", "%c3", "%ff", "%e2%80%ae", "%3F", "%3f", "%23", "%20", "%09", "%7f"],
    *["é", "Ã©", "\u202e", "?", "#", "\\", " ", "\t", "\x00", ";", ";a=b", ":", "@", "&", "+"],
    *["\udcff", "%ED%A0%80", "%C0%AF", "%E0%80%AF"],  # lone surrogate, its UTF-8 form, overlongs
]
segments = st.sampled_from(SEGMENTS) | st.text("abc.%2fF5C0e", max_size=6)
queries = st.sampled_from(["", "?", "?a=1", "?x=%2F&y=..", "?é", "?#f", "?a?b"])


@st.composite
def structured_targets(draw: st.DrawFn) -> str:
    parts = draw(st.lists(segments, max_size=8))
    separators = [draw(st.sampled_from(["/", "/", "//"])) for _ in parts]
    path = "".join(sep + part for sep, part in zip(separators, parts, strict=True)) or "/"
    return draw(st.sampled_from(["", "", "http://h", "*", "\\"])) + path + draw(queries)


@given(structured_targets())
def test_structured_targets_follow_the_rules(raw: str) -> None:
    with kept_if_failing("paths", raw.encode("utf-8", "surrogatepass")):
        check_target(raw)


@given(st.text(max_size=64).map(lambda t: "/" + t) | st.text(max_size=16))
def test_arbitrary_strings_are_canonical_or_refused(raw: str) -> None:
    with kept_if_failing("paths", raw.encode("utf-8", "surrogatepass")):
        check_target(raw)


@given(st.binary(max_size=48))
def test_what_aiohttp_hands_over_is_canonical_or_refused(wire: bytes) -> None:
    """aiohttp decodes the request-target as UTF-8 with surrogateescape."""
    raw = "/" + wire.decode("utf-8", "surrogateescape")
    with kept_if_failing("paths", raw.encode("utf-8", "surrogatepass")):
        check_target(raw)


def _random_case(draw: st.DrawFn, text: str) -> str:
    return "".join(draw(st.sampled_from([c.lower(), c.upper()])) for c in text)


@narrow()
@given(st.lists(segments, max_size=4), st.lists(segments, max_size=4), st.data())
def test_an_encoded_slash_backslash_nul_or_percent_is_never_accepted(
    before: list[str], after: list[str], data: st.DataObject
) -> None:
    escape = _random_case(data.draw, data.draw(st.sampled_from(["%2f", "%5c", "%00", "%25"])))
    glue = data.draw(st.sampled_from(["", "/"]))
    raw = "/" + "/".join(before) + glue + escape + glue + "/".join(after)
    with kept_if_failing("paths", raw.encode("utf-8", "surrogatepass")):
        assert isinstance(canonicalize(raw), BadTarget), raw
        check_target(raw)


@narrow()
@given(st.lists(st.sampled_from(["a", "b", "%41", "."]), max_size=4), st.data())
def test_climbing_above_the_root_is_never_accepted(names: list[str], data: st.DataObject) -> None:
    dots = st.sampled_from(["..", "%2e%2e", "%2E.", ".%2e"])
    climbs = [data.draw(dots) for _ in range(sum(n != "." for n in names) + 1)]
    tail = data.draw(st.lists(st.sampled_from(["x", "..", "."]), max_size=3))
    raw = "/" + "/".join([*names, *climbs, *tail])
    with kept_if_failing("paths", raw.encode("utf-8", "surrogatepass")):
        assert isinstance(canonicalize(raw), BadTarget), raw
        check_target(raw)
