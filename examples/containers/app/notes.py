"""A notes service shipped as a container image: standard library only, honouring trustproof's
contract with `trustproof.middleware.contract` (copied into the image under /srv/lib).

    GET /notes          the notes           POST /notes     add one (JSON body)
    GET /healthz        ready (no proof needed: the controller checks it directly)

Every request but the health check must carry its gateway's proof (401 otherwise, before any
handler runs); the caller is taken from that proof; handled answers carry ``X-Served-By``.

``--trust-headers`` is the mistake the suite must catch: no proof is checked and the caller is
read from an ``X-User`` header, so anyone who reaches the port directly is whoever they claim.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from trustproof.middleware.contract import SERVED_BY, Caller, Contract, Refusal

TRUST_HEADERS = "--trust-headers" in sys.argv[1:]
CONTRACT = None if TRUST_HEADERS else Contract.from_env()
SERVICE = os.environ["TRUSTPROOF_SERVICE"]
NOTES: list[dict[str, Any]] = [{"id": 1, "text": "hello from a container"}]
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args: Any) -> None:
        sys.stdout.write(f"{self.command} {self.path} -> {fmt % args}\n")  # one write a line
        sys.stdout.flush()

    def answer(self, status: int, body: object, *, marked: bool = True) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if marked:
            self.send_header(SERVED_BY, SERVICE)
        self.end_headers()
        self.wfile.write(data)

    def caller(self) -> str | None:
        """The verified principal, or None once a refusal was sent."""
        if CONTRACT is None:
            return self.headers.get("X-User", "anonymous")
        checked = CONTRACT.check(self.command, self.path, self.headers.items())
        if isinstance(checked, Refusal):
            self.answer(checked.status, json.loads(checked.body()))
            return None
        return checked.principal if isinstance(checked, Caller) else "anonymous"

    def read_json(self) -> object:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(min(length, 1 << 16)) if length else b""
        try:
            return json.loads(raw or b"{}")
        except ValueError:
            return {}

    def do_GET(self) -> None:
        if self.path == "/healthz":
            self.answer(200, {"ok": True}, marked=False)
            return
        who = self.caller()
        if who is None:
            return
        if self.path == "/notes":
            with LOCK:
                self.answer(200, {"notes": NOTES, "caller": who})
        else:
            self.answer(404, {"error": "no such route"}, marked=False)

    def do_POST(self) -> None:
        who = self.caller()
        if who is None:
            return
        if self.path != "/notes":
            self.answer(404, {"error": "no such route"}, marked=False)
            return
        body = self.read_json()
        text = str(body.get("text", "")) if isinstance(body, dict) else ""
        with LOCK:
            note = {"id": len(NOTES) + 1, "text": text[:200], "by": who}
            NOTES.append(note)
        self.answer(201, note)


def main() -> None:
    host, port = os.environ["TRUSTPROOF_HOST"], int(os.environ["TRUSTPROOF_PORT"])
    server = ThreadingHTTPServer((host, port), Handler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    mode = "TRUSTING X-User HEADERS (no gateway proof checked)" if TRUST_HEADERS else "verified"
    print(f"{SERVICE} listening on {host}:{port}, callers {mode}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
