"""Read a spec file: YAML text → node tree → typed `Spec` → cross-checked, or `SpecError`."""

from __future__ import annotations

import contextlib
import dataclasses
import gc
from collections.abc import Iterator
from pathlib import Path

from trustproof.errors import Problem, SpecError
from trustproof.policy.validation import check_policies
from trustproof.spec.compose import compose
from trustproof.spec.crossref import CrossChecker
from trustproof.spec.decode import INVALID, Decoder
from trustproof.spec.files import FileRefusal, read_bounded
from trustproof.spec.limits import LIMITS, size
from trustproof.spec.model import Spec


def _short(file: str) -> str:
    """A file name as problems show it: a pathological one cut to a readable length."""
    return file if len(file) <= 200 else f"{file[:120]}... ({len(file):,} characters)"


def load_spec(path: str | Path, *, policies: bool = True) -> Spec:
    """Load and validate the spec at `path`; raises `SpecError` listing every problem.

    `policies=False` skips validating the Cedar policies against their schema (for tools that
    report on broken policies themselves).
    """
    file = str(path)
    try:
        raw = read_bounded(Path(path), LIMITS.spec_bytes, name="the spec file")
    except FileRefusal as exc:
        if exc.missing:
            raise SpecError(
                [
                    Problem(
                        file,
                        0,
                        0,
                        "",
                        "no such file",
                        "run `trustproof init` to write a starter spec",
                    )
                ]
            ) from None
        hint = exc.hint or "a spec is one small YAML text file; check the path given"
        raise SpecError([Problem(_short(file), 0, 0, "", exc.message, hint)]) from None
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


@contextlib.contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while the spec is read.

    Reading builds hundreds of thousands of small objects in one go (nodes, then the model), none
    of them in a reference cycle; the collector's repeated full passes over that growing heap made
    validation superlinear (8,000 personas: 3.4 s; 32,000: 14 s — 7.5 s without the passes).
    Reference counting still frees everything; the collector resumes as it was.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def parse_spec(text: str, path: Path, *, policies: bool = True) -> Spec:
    """Validate spec `text` as if read from `path` (relative paths resolve against its folder)."""
    with _no_cycle_collection():
        return _parse(text, path, policies)


def _parse(text: str, path: Path, policies: bool) -> Spec:
    file = str(path)
    if len(text) > LIMITS.spec_bytes:
        raise SpecError(
            [
                Problem(
                    file,
                    0,
                    0,
                    "",
                    f"the spec is {len(text):,} characters (at most {size(LIMITS.spec_bytes)})",
                    "a spec is a small text file; split out what does not belong in it",
                )
            ]
        )
    root = compose(text, file, LIMITS)
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
