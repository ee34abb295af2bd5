"""``Expect: 100-continue`` on the gateway's HTTP/1.1 server side (RFC 9110 §10.1.1), driven
with bytes on a fake transport that logs every write and every chunk fed, in order (no sockets):
the decision is taken on the head, a refusal is written before any body byte is sent, an allowed
request gets its 100 before its body is read. Each check has a failing twin: a server that waits
for the body before deciding (`WaitsForBody`) is caught by the same check."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from trustproof.gateway.connections import TimedServer
from trustproof.gateway.h1fake import FakeTransport
from trustproof.gateway.h1server import GatewayConnection, Handler, Malformed, Request, Response
from trustproof.gateway.headers import relayable
from trustproof.gateway.http1 import CONSUMED, ResponseParser

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
BODY = b"x" * 2048
HEAD = b"POST /orders HTTP/1.1\r\nHost: x\r\nContent-Length: 2048\r\nExpect: 100-continue\r\n\r\n"


class WaitsForBody(GatewayConnection):
    """The twin: a server side that ignores the expectation and decides on the whole request
    (what the gateway did before; curl then waits a second before sending its body)."""

    def _expectation(self) -> None:
        pass


class Run:
    """One connection fed `chunks`; `decide` says what the head of an expecting request gets."""

    def __init__(
        self,
        chunks: list[bytes],
        *,
        decide: Callable[[Request], Response | None] = lambda head: None,
        connection: type[GatewayConnection] = GatewayConnection,
    ) -> None:
        self.log: list[tuple[str, bytes]] = []
        self.decided: list[tuple[str, bytes]] = []  # heads the expectation handler saw
        self.handled: list[Request] = []  # complete requests the handler saw
        self.refused: list[Malformed] = []
        self.closed = False
        self._decide, self._connection = decide, connection
        asyncio.run(self._main(chunks))

    def _continuation(self, request: Request, reply: Callable[[Response], None]) -> Response:
        self.handled.append(request)
        return Response(200, [], f"{request.method} {len(request.body)}".encode())

    def _handler(self, request: Request, reply: Callable[[Response], None]) -> Response | None:
        refusal = self._decide(request)  # a request without the expectation: decided whole
        return refusal if refusal is not None else self._continuation(request, reply)

    def _on_expect(self, head: Request) -> Response | Handler:
        self.decided.append((head.raw_path, head.body))  # the body as it was then
        refusal = self._decide(head)
        return refusal if refusal is not None else self._continuation

    def _malformed(self, connection: GatewayConnection, what: Malformed) -> Response:
        self.refused.append(what)
        return Response(what.status, [], b"refused")

    async def _main(self, chunks: list[bytes]) -> None:
        server = TimedServer(self._handler)
        server.on_malformed = self._malformed
        server.on_expect = self._on_expect
        connection = self._connection(server, server.handler, server._malformed, server._expect)
        transport = FakeTransport(log=self.log)
        connection.connection_made(transport)  # type: ignore[arg-type]
        for chunk in chunks:
            if transport.closed:
                break
            self.log.append(("sent", chunk))
            connection.data_received(chunk)
            await asyncio.sleep(0)
        self.closed = transport.closed
        connection.connection_lost(None)

    def writes(self) -> list[bytes]:
        return [data for kind, data in self.log if kind == "wrote"]

    def before_body(self) -> list[bytes]:
        """What was written before the first chunk of the body was sent."""
        sent = [i for i, entry in enumerate(self.log) if entry == ("sent", BODY)]
        index = sent[0] if sent else len(self.log)
        return [data for kind, data in self.log[:index] if kind == "wrote"]


def _forbidden(head: Request) -> Response | None:
    return Response(403, [("X-Why", "policy")], b"denied")


def continued_before_body(run: Run) -> bool:
    return run.before_body() == [CONTINUE]


def refused_before_body(run: Run) -> bool:
    written = run.before_body()
    return len(written) == 1 and written[0].startswith(b"HTTP/1.1 403 Forbidden\r\n")


def test_an_allowed_request_gets_100_before_its_body_is_sent_and_is_decided_once() -> None:
    run = Run([HEAD, BODY])
    assert continued_before_body(run)
    assert run.decided == [("/orders", b"")]
    assert [request.body for request in run.handled] == [BODY]  # the continuation, once
    assert run.writes()[1].startswith(b"HTTP/1.1 200 OK\r\n")
    assert run.writes()[1].endswith(b"POST 2048")
    assert not run.closed


def test_twin_a_server_that_waits_for_the_body_sends_no_100_before_it() -> None:
    run = Run([HEAD, BODY], connection=WaitsForBody)
    assert not continued_before_body(run)
    assert run.before_body() == []
    assert CONTINUE not in run.writes()


def test_a_request_refused_on_its_head_is_answered_at_once_and_closed_unread() -> None:
    run = Run([HEAD, BODY], decide=_forbidden)
    assert refused_before_body(run)
    assert b"Connection: close\r\n" in run.writes()[0]
    assert CONTINUE not in run.writes()
    assert run.closed
    assert run.handled == []  # the body never reached a handler
    assert ("sent", BODY) not in run.log  # closed before the client's body was fed


def test_twin_a_server_that_waits_for_the_body_refuses_only_after_it() -> None:
    run = Run([HEAD, BODY], decide=_forbidden, connection=WaitsForBody)
    assert not refused_before_body(run)
    assert run.writes()[0].startswith(b"HTTP/1.1 403 Forbidden\r\n")  # but only after the body


def test_another_expectation_is_answered_417_and_closed() -> None:
    run = Run([HEAD.replace(b"100-continue", b"200-ok"), BODY])
    assert [(m.status, m.name) for m in run.refused] == [(417, "ExpectationFailed")]
    assert run.writes()[0].startswith(b"HTTP/1.1 417 Expectation Failed\r\n")
    assert run.closed
    assert run.handled == run.decided == []


def test_twin_100_continue_in_any_case_and_listed_twice_is_not_417() -> None:
    run = Run([HEAD.replace(b"100-continue", b"100-Continue, 100-continue"), BODY])
    assert run.refused == []
    assert continued_before_body(run)


def test_an_http_1_0_request_expectation_is_ignored() -> None:
    head = HEAD.replace(b"HTTP/1.1", b"HTTP/1.0")
    run = Run([head, BODY])
    assert run.decided == []
    assert CONTINUE not in run.writes()
    assert [request.body for request in run.handled] == [BODY]
    odd = Run([head.replace(b"100-continue", b"200-ok"), BODY])
    assert odd.refused == []
    assert [request.body for request in odd.handled] == [BODY]


def test_a_body_sent_without_waiting_is_served_without_a_100() -> None:
    run = Run([HEAD + BODY])
    assert run.decided == []
    assert CONTINUE not in run.writes()
    assert [request.body for request in run.handled] == [BODY]
    assert run.writes()[0].startswith(b"HTTP/1.1 200 OK\r\n")


def test_a_request_without_a_body_gets_no_100() -> None:
    run = Run([HEAD.replace(b"Content-Length: 2048", b"Content-Length: 0")])
    assert run.decided == []
    assert CONTINUE not in run.writes()
    assert len(run.handled) == 1


def test_the_100_comes_after_the_answers_to_the_requests_before_it() -> None:
    get = b"GET /orders/1 HTTP/1.1\r\nHost: x\r\n\r\n"
    run = Run([get + HEAD, BODY])
    written = run.before_body()
    assert [data[:15] for data in written] == [b"HTTP/1.1 200 OK", CONTINUE[:15]]
    assert [request.raw_path for request in run.handled] == ["/orders/1", "/orders"]


def test_the_expect_field_is_not_relayed_and_a_services_100_is_not_the_answer() -> None:
    kept, _ = relayable([("Expect", "100-continue"), ("X-A", "1")], CONSUMED)
    assert kept == [("X-A", "1")]
    parser = ResponseParser("POST")
    assert not parser.feed(b"HTTP/1.1 100 Continue\r\n\r\n")  # not an answer: the next one is
    assert parser.response is None
    assert parser.feed(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok")
    assert parser.response is not None
    assert (parser.response.status, parser.response.body) == (201, b"ok")
