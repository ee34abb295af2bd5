"""Coverage-guided fuzzing (atheris, i.e. libFuzzer) of the same oracles the Hypothesis tests use.

    python tests/fuzz/atheris_run.py TARGET [libFuzzer flags] [CORPUS_DIR ...]

TARGET is `http1` (bytes are a response: `http1_oracle.check_response`) or `paths` (bytes are a
request-target in UTF-8, lone surrogates allowed: `paths_oracle.check_target`). `make fuzz` runs
each for a bounded time with `-artifact_prefix=tests/fuzz/corpus/TARGET/`, so every crasher
lands in the saved corpus as `crash-<sha1>` and is replayed by `test_fuzz_corpus.py` from then on.
Not a test module (pytest does not collect it); atheris is a Linux x86-64 dev dependency.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the oracles live next to this file

with atheris.instrument_imports(include=["trustproof.gateway.http1", "trustproof.gateway.paths"]):
    from http1_oracle import check_response
    from paths_oracle import check_target


def http1(data: bytes) -> None:
    check_response(data, splits=False)  # byte by byte already stops at every cut point


def paths(data: bytes) -> None:
    try:
        raw = data.decode("utf-8", "surrogatepass")  # the corpus files' encoding
    except UnicodeDecodeError:
        return
    check_target(raw)


TARGETS: dict[str, Callable[[bytes], None]] = {"http1": http1, "paths": paths}


def main(argv: list[str], targets: dict[str, Callable[[bytes], None]] = TARGETS) -> None:
    if len(argv) < 2 or argv[1] not in targets:
        sys.exit(f"usage: {argv[0]} {{{','.join(targets)}}} [libFuzzer flags] [CORPUS_DIR ...]")
    target = targets[argv[1]]
    atheris.Setup([argv[0], *argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
