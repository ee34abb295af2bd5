"""Fuzzing the spec loader: whatever the text, `parse_spec` returns a `Spec` or raises `SpecError`
whose problems are located and worded — never another exception.

Three generators: arbitrary text; text assembled from YAML's own syntax (anchors, aliases, merge
keys, tags, flow and block collections, documents); and structured mutations of the bundled shop
spec (a value replaced, a key removed or added, a YAML fragment spliced into its text). Every input
that once broke the loader is kept under ``corpus/spec/`` and replayed by
`test_the_saved_crashers_stay_fixed`: ``fuzz-*`` found by these tests, ``issue10-*`` reported in
issue 10 (all crashed, hung or exhausted memory before the limits), and ``limit-*`` inputs that
each limit refuses. Run longer with ``HYPOTHESIS_PROFILE=fuzz``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from trustproof.errors import Problem, SpecError
from trustproof.spec import Spec, parse_spec

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus" / "spec"
SHOP = HERE.parents[1] / "examples" / "shop"
SHOP_TEXT = (SHOP / "trustproof.yaml").read_text(encoding="utf-8")
SHOP_DATA: dict[str, Any] = yaml.safe_load(SHOP_TEXT)


@pytest.fixture(scope="module")
def spec_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the fuzzed text claims to come from: a copy of the shop (its files resolve)."""
    target = tmp_path_factory.mktemp("fuzz") / "shop"
    shutil.copytree(SHOP, target, ignore=shutil.ignore_patterns("trustproof-reports"))
    return target / "trustproof.yaml"


def check(text: str, path: Path) -> None:
    """The property: a valid spec, or a SpecError of located, worded problems."""
    problems: tuple[Problem, ...] = ()
    try:
        spec = parse_spec(text, path)
    except SpecError as exc:
        problems = exc.problems
        assert problems
    else:
        assert isinstance(spec, Spec)
    for problem in problems:
        assert problem.line >= 0
        assert problem.column >= 0
        assert problem.message.strip()
        assert len(problem.render()) < 4000  # huge values are shown cut short


YAML_PIECES = [
    "trust_domain: a.test\n",
    "services:\n",
    "personas:\n",
    "  s:\n",
    "    port: 1\n",
    "    command: [x]\n",
    "    routes: ['GET /a/{id}', GET /a]\n",
    "access:\n",
    "{",
    "}",
    "[",
    "]",
    ", ",
    ": ",
    "- ",
    "? ",
    "\n",
    "  ",
    "    ",
    "'",
    '"',
    "# c\n",
    "---\n",
    "...\n",
    "%YAML 1.1\n",
    "%TAG ! tag:x,2000:\n",
    "&a ",
    "&b ",
    "*a",
    "*b",
    "<<: ",
    "<<: [*a, *b]",
    "!!int ",
    "!!float ",
    "!!bool ",
    "!!timestamp ",
    "!!binary ",
    "!!set ",
    "!!omap ",
    "!!pairs ",
    "!!str ",
    "!!null ",
    "!!seq ",
    "!!map ",
    "!!python/object:os.system ",
    "!x ",
    "9" * 40,
    "0x" + "f" * 40,
    "1:2:3:4",
    "1_000",
    ".inf",
    "-.nan",
    "1e999",
    "0o17",
    "true",
    "no",
    "null",
    "~",
    "2001-13-45",
    "2001-12-14t21:59:43.10-99:00",
    "|\n  t\n",
    ">-\n  t\n",
    "\t",
    "\\u0000",
    "\x85",
    "\ufeff",
    "é",
    "a" * 70,
]


@given(st.text(max_size=400))
def test_arbitrary_text(spec_path: Path, text: str) -> None:
    check(text, spec_path)


@given(st.lists(st.sampled_from(YAML_PIECES) | st.text(max_size=8), max_size=60))
def test_yaml_shaped_text(spec_path: Path, pieces: list[str]) -> None:
    check("".join(pieces), spec_path)


scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=30)
    | st.sampled_from(
        ["GET /x", "select", "5m", "127.0.0.1", "policies/shop.cedar", "*", "/dev/zero"]
    )
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(data, dict):
        for key, value in data.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            out += _paths(value, (*prefix, index))
    return out


SHOP_PATHS = _paths(SHOP_DATA)[1:]


def _mutate(data: Any, path: tuple[Any, ...], action: str, value: Any, key: str) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    copy: Any = dict(data) if isinstance(data, dict) else list(data)
    if rest:
        copy[head] = _mutate(copy[head], rest, action, value, key)
    elif action == "replace":
        copy[head] = value
    elif action == "delete":
        del copy[head]
    elif isinstance(copy, dict):
        copy[key] = value
    else:
        copy.insert(head, value)
    return copy


@given(
    st.lists(
        st.tuples(
            st.sampled_from(SHOP_PATHS),
            st.sampled_from(["replace", "delete", "add"]),
            values,
            st.text(max_size=12),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_structured_mutations_of_the_shop(
    spec_path: Path, mutations: list[tuple[tuple[Any, ...], str, Any, str]]
) -> None:
    data: Any = SHOP_DATA
    for path, action, value, key in mutations:
        try:
            data = _mutate(data, path, action, value, key)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or reshaped that path
    check(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), spec_path)


@given(st.integers(0, len(SHOP_TEXT)), st.lists(st.sampled_from(YAML_PIECES), max_size=4))
def test_yaml_spliced_into_the_shop(spec_path: Path, at: int, pieces: list[str]) -> None:
    check(SHOP_TEXT[:at] + "".join(pieces) + SHOP_TEXT[at:], spec_path)


@pytest.mark.parametrize("case", sorted(CORPUS.glob("*.yaml")), ids=lambda p: p.name)
def test_the_saved_crashers_stay_fixed(spec_path: Path, case: Path) -> None:
    check(case.read_text(encoding="utf-8"), spec_path)


def test_the_corpus_is_not_empty() -> None:
    assert len(list(CORPUS.glob("*.yaml"))) >= 10
