"""Read a spec file: YAML text → node tree → typed `Spec` → cross-checked, or `SpecError`."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml

from trustproof.errors import Problem, SpecError
from trustproof.policy.validation import check_policies
from trustproof.spec.crossref import CrossChecker
from trustproof.spec.decode import INVALID, Decoder
from trustproof.spec.model import Spec


def _syntax_hint(problem: str) -> str:
    if "\\t" in problem or "tab" in problem:
        return "indent with spaces; YAML does not allow tabs for indentation"
    if "'{'" in problem or "'}'" in problem:
        return (
            "inside [a, b] lists '{' starts a mapping: quote routes with placeholders, "
            "e.g. ['GET /orders/{id}'], or write the list one '- ' item per line"
        )
    return "check the indentation and quoting around this point"


def load_spec(path: str | Path, *, policies: bool = True) -> Spec:
    """Load and validate the spec at `path`; raises `SpecError` listing every problem.

    `policies=False` skips validating the Cedar policies against their schema (for tools that
    report on broken policies themselves).
    """
    file = str(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise SpecError(
            [
                Problem(
                    file, 0, 0, "", "no such file", "run `trustproof init` to write a starter spec"
                )
            ]
        ) from None
    except OSError as exc:
        raise SpecError(
            [Problem(file, 0, 0, "", f"cannot read the file: {exc.strerror}")]
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(
            [
                Problem(
                    file,
                    0,
                    0,
                    "",
                    f"the file is not UTF-8 text (byte {exc.start})",
                    "save it as UTF-8",
                )
            ]
        ) from None
    return parse_spec(text, Path(path), policies=policies)


def parse_spec(text: str, path: Path, *, policies: bool = True) -> Spec:
    """Validate spec `text` as if read from `path` (relative paths resolve against its folder)."""
    file = str(path)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        problem = exc.problem or exc.context or "malformed YAML"
        hint = _syntax_hint(problem)
        raise SpecError(
            [Problem(file, line, col, "", f"YAML syntax error: {problem}", hint)]
        ) from None
    except yaml.YAMLError as exc:
        raise SpecError([Problem(file, 0, 0, "", f"YAML error: {exc}")]) from None
    if root is None:
        raise SpecError(
            [
                Problem(
                    file,
                    0,
                    0,
                    "",
                    "the file is empty",
                    "run `trustproof init` to write a starter spec",
                )
            ]
        )
    decoder = Decoder(file)
    spec: Spec = decoder.decode(root, Spec, ())
    if spec is INVALID:
        raise SpecError(decoder.problems)
    spec = dataclasses.replace(spec, path=path.absolute())
    problems = decoder.problems + CrossChecker(spec, file, decoder.marks, decoder.key_marks).run()
    if problems:
        raise SpecError(problems)
    # Policies are checked against the schema once every file they need is known to exist.
    problems = check_policies(spec) if policies else []
    if problems:
        raise SpecError(problems)
    return spec
