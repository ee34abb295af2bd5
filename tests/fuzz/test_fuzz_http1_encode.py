"""Property tests of the upstream request encoder (`trustproof.gateway.http1.encode_request`).

Whatever it is given, it refuses with `invalid-request` or writes a head that a strict parser
reads back as exactly that request: one request line, header lines that are `token: value`, the
framing (`Host`, `Content-Length`) its own and nothing a caller passed in able to add another."""

from __future__ import annotations

from fuzzkit import kept_if_failing
from http1_oracle import check_encode
from hypothesis import given
from hypothesis import strategies as st

FRAMING = ("Host", "Content-Length", "Transfer-Encoding", "Connection")

tricky_names = st.sampled_from(
    [
        *FRAMING,
        *(n.lower() for n in FRAMING),
        *(n + suffix for n in FRAMING for suffix in (" ", "\t", ":", ": 5", ":chunked", "\x00")),
        *(prefix + n for n in FRAMING for prefix in (" ", "\t", "\r\n", "\n")),
        "X-Ok",
        "",
        "X Y",
        "X:Y",
    ]
)
names = tricky_names | st.text(max_size=10)
field_values = st.sampled_from(["v", "chunked", "5", "x y", ""]) | st.sampled_from(
    ["a\r\nX: y", "a\nb", "a\rb", "\x00", "é", "\u20ac"]
)


@given(
    st.sampled_from(["GET", "POST", "HEAD", "DELETE"]) | st.text(max_size=6),
    st.sampled_from(["/", "/a?b=1", "*"]) | st.text(max_size=8),
    st.sampled_from(["svc.internal:8443", "127.0.0.1:1"]) | st.sampled_from(["h\r\nX: y", "h\x00"]),
    st.lists(st.tuples(names, field_values), max_size=4),
    st.sampled_from([b"", b"x", b"hello"]),
)
def test_a_request_head_reads_back_as_exactly_that_request(
    method: str, target: str, host: str, headers: list[tuple[str, str]], body: bytes
) -> None:
    with kept_if_failing("http1-encode", repr((method, target, host, headers, body)).encode()):
        check_encode(method, target, host, headers, body)
