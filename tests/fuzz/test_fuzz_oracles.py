"""The oracles catch what they are meant to catch: each is run against a deliberately broken
target and must fail with the specific complaint (a fuzz target that cannot fail proves nothing).
Also: a failing input is saved to the corpus only under `make fuzz`."""

from __future__ import annotations

import re
from pathlib import Path

import fuzzkit
import http1_oracle
import paths_oracle
import pytest

from trustproof.gateway.http1 import ResponseParser, UpstreamResponse
from trustproof.gateway.paths import canonicalize

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"


class CrashesOnNul(ResponseParser):
    def feed(self, data: bytes) -> bool:
        if b"\x00" in data:
            raise IndexError("a bug")
        return super().feed(data)


class JudgesByPiece(ResponseParser):
    """Refuses a piece that ends in CR: a verdict that depends on the chunking."""

    def feed(self, data: bytes) -> bool:
        if data.endswith(b"\r"):
            self.feed_eof()  # closed-mid-response
        return super().feed(data)


class AcceptsBothFramings(ResponseParser):
    def feed(self, data: bytes) -> bool:
        super().feed(data)
        headers = (("Content-Length", "5"), ("Transfer-Encoding", "chunked"))
        self.response = UpstreamResponse(200, headers, b"")
        return True


class AcceptsObsFold(ResponseParser):
    """Drops folded continuation lines instead of refusing them."""

    def feed(self, data: bytes) -> bool:
        return super().feed(re.sub(rb"\r\n[ \t][^\r]*", b"", data))


def test_the_parser_oracle_catches_an_accepted_obs_fold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http1_oracle, "ResponseParser", AcceptsObsFold)
    http1_oracle.check_response(OK)
    with pytest.raises(AssertionError, match="accepted the field line b' folded'"):
        http1_oracle.check_response(
            b"HTTP/1.1 200 OK\r\nX: a\r\n folded\r\nContent-Length: 0\r\n\r\n"
        )


def test_the_parser_oracle_lets_a_crash_through(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http1_oracle, "ResponseParser", CrashesOnNul)
    http1_oracle.check_response(OK)  # the twin: the same parser on clean bytes passes
    with pytest.raises(IndexError, match="a bug"):
        http1_oracle.check_response(OK + b"\x00")


def test_the_parser_oracle_catches_a_chunking_dependent_verdict(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(http1_oracle, "ResponseParser", JudgesByPiece)
    with pytest.raises(AssertionError, match=r"GET: (split at \d+|byte by byte) refused"):
        http1_oracle.check_response(OK)


def test_the_parser_oracle_catches_conflicting_framing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http1_oracle, "ResponseParser", AcceptsBothFramings)
    with pytest.raises(AssertionError, match="both CL and TE accepted"):
        http1_oracle.check_response(OK)


def test_the_path_oracle_catches_an_accepted_encoded_slash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        paths_oracle, "canonicalize", lambda raw: canonicalize(raw.replace("%2F", "_"))
    )
    paths_oracle.check_target("/a/b")
    with pytest.raises(AssertionError, match="the rules give None"):
        paths_oracle.check_target("/a%2Fb")


def test_the_path_oracle_catches_a_second_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def decodes_twice(raw: str) -> object:
        return canonicalize(raw.replace("%252e", "."))

    monkeypatch.setattr(paths_oracle, "canonicalize", decodes_twice)
    with pytest.raises(AssertionError, match="/a/%252e%252e/b' gives '/b'"):
        paths_oracle.check_target("/a/%252e%252e/b")


def test_the_path_oracle_lets_a_crash_through(monkeypatch: pytest.MonkeyPatch) -> None:
    def crashes(raw: str) -> object:
        raise KeyError(raw)

    monkeypatch.setattr(paths_oracle, "canonicalize", crashes)
    with pytest.raises(KeyError):
        paths_oracle.check_target("/a")


def test_a_failing_input_is_saved_only_under_make_fuzz(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(fuzzkit, "CORPUS", tmp_path)
    monkeypatch.delenv(fuzzkit.SAVE_ENV, raising=False)
    with pytest.raises(ValueError, match="first"), fuzzkit.kept_if_failing("t", b"first"):
        raise ValueError("first")
    assert not (tmp_path / "t").exists()
    monkeypatch.setenv(fuzzkit.SAVE_ENV, "1")
    with pytest.raises(ValueError, match="second"), fuzzkit.kept_if_failing("t", b"second"):
        raise ValueError("second")
    with fuzzkit.kept_if_failing("t", b"passes"):
        pass
    assert [p.read_bytes() for p in fuzzkit.cases("t")] == [b"second"]
