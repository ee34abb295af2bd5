"""What every fuzz target shares: the saved corpus and how a failure gets into it.

`tests/fuzz/corpus/<target>/` holds one file per input that ever broke a target (a crash or a
violated property), named `crash-<sha1 of the bytes>` like libFuzzer's artifacts, so the same
input found by Hypothesis or by atheris lands in the same file. The replay test runs every file
through the target's oracle on every `make test`.

Hypothesis saves a failing input by itself only under `make fuzz` (`TRUSTPROOF_FUZZ_SAVE=1`), and
only its final, shrunk form; CI never writes into the tree.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hypothesis import settings
from hypothesis.control import current_build_context, currently_in_test_context

CORPUS = Path(__file__).resolve().parent / "corpus"
SAVE_ENV = "TRUSTPROOF_FUZZ_SAVE"


def cases(target: str) -> list[Path]:
    """The saved inputs of `target`, in a stable order (README files are not inputs)."""
    folder = CORPUS / target
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.startswith("crash-"))


def save(target: str, data: bytes) -> Path:
    """Write `data` into the corpus of `target` (idempotent: the name is the content's hash)."""
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"crash-{hashlib.sha1(data, usedforsecurity=False).hexdigest()}"
    path.write_bytes(data)
    return path


def _final_example() -> bool:
    # Outside a Hypothesis test (atheris, a plain call) every failure is final. Inside one, only
    # the last run counts: the others are the shrinker's intermediate steps.
    return not currently_in_test_context() or current_build_context().is_final


@contextmanager
def kept_if_failing(target: str, data: bytes) -> Iterator[None]:
    """Run the body; if it fails under `make fuzz`, save `data` before the failure propagates."""
    try:
        yield
    except BaseException:
        if os.environ.get(SAVE_ENV) == "1" and _final_example():
            save(target, data)
        raise


def narrow(fraction: float = 0.25) -> settings:
    """Settings for a property whose input space is small (one smuggling shape, one boundary): a
    `fraction` of the active profile's examples, so `ci` stays fast and `fuzz` still scales."""
    return settings(max_examples=max(10, int(settings.default.max_examples * fraction)))
