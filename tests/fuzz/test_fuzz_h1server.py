"""The gateway's HTTP/1.1 server side (`gateway.h1server`): however a client's bytes are split
across reads, the same requests reach the handler and the same refusal ends the connection —
the verdict never depends on where a TCP segment ended (no sockets: a fake transport)."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from trustproof.gateway.connections import TimedServer
from trustproof.gateway.h1fake import feed
from trustproof.gateway.h1server import GatewayConnection, Malformed, Reply, Request, Response

PIECES = [
    b"GET /orders/1 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"POST /orders HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
    b"POST /o HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nT: 1\r\n\r\n",
    b"GET / HTTP/1.1\r\nX:  spaced \r\n\r\n",
    b"GET /orders HTTP/1.1\nX: y\n\n",  # bare LF
    b"GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n",  # obs-fold
    b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"GET / HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: x\r\n\r\n",
    b"GET /x HTTP/1.1\r\nConnection: close\r\n\r\n",
    b"\x00\x01garbage",
]


Seen = tuple[str, str, tuple[int, int], bytes, tuple[tuple[str, str], ...]]
Outcome = tuple[list[Seen], list[str]]


def outcome(chunks: list[bytes]) -> Outcome:
    seen: list[Seen] = []
    refused: list[str] = []

    def handle(request: Request, reply: Reply) -> Response:
        seen.append(
            (
                request.method,
                request.raw_path,
                request.version,
                request.body,
                tuple(request.raw_headers),
            )
        )
        return Response(200, [], b"ok")

    def malformed(connection: GatewayConnection, what: Malformed) -> Response:
        refused.append(f"{what.status} {what.head_complete}")
        return Response(what.status, [], b"no")

    async def main() -> None:
        server = TimedServer(handle)
        server.on_malformed = malformed
        await feed(server(), chunks)

    asyncio.run(main())
    return seen, refused


@given(
    st.lists(st.sampled_from(PIECES), min_size=1, max_size=5),
    st.lists(st.integers(min_value=0, max_value=400), max_size=8),
)
def test_the_same_requests_and_refusals_however_the_bytes_are_split(
    pieces: list[bytes], cuts: list[int]
) -> None:
    data = b"".join(pieces)
    points = sorted({min(cut, len(data)) for cut in cuts})
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    assert outcome([c for c in chunks if c]) == outcome([data])
