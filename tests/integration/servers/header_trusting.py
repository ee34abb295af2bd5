"""A tiny service terminating mutual TLS itself (``gateway: none``), for the identity-header and
listener tests. Standard library only, nothing from trustproof.

* The caller is the SPIFFE ID in its client certificate (chained to ``TRUSTPROOF_BUNDLE_FILE``)
  — unless ``HONOUR_HEADER`` names a forwarded-identity header (``X-Forwarded-User``) and the
  request carries it: then the header's value is the caller. That is the mistake of a service
  written for an auth proxy in front, deployed without one.
* ``GET /items`` is allowed to `ALLOWED` only (200), all else 403.
* ``EXTRA_PORT``: a child process also listens there, in plaintext (a debug server nobody
  declared); the service serves once the child listens.
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ENV = os.environ
ALLOWED = {"alice"}
HONOUR = ENV.get("HONOUR_HEADER", "")


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        caller = ""
        peer = self.connection.getpeercert() if isinstance(self.connection, ssl.SSLSocket) else None
        for kind, value in (peer or {}).get("subjectAltName", ()):
            if kind == "URI":
                caller = str(value).rsplit("/", 1)[-1]
        if HONOUR and self.headers.get(HONOUR):
            caller = self.headers[HONOUR]
        allowed = self.path == "/items" and caller in ALLOWED
        body = b'{"ok": true}' if allowed else b'{"error": "forbidden"}'
        self.send_response(200 if allowed else 403)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


def main() -> None:
    extra = ENV.get("EXTRA_PORT")
    if extra:
        argv = [sys.executable, "-m", "http.server", extra, "--bind", "127.0.0.1"]
        subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):  # ready only once the child listens too (at most 5 s)
            try:
                socket.create_connection(("127.0.0.1", int(extra)), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(ENV["TRUSTPROOF_CERT_FILE"], ENV["TRUSTPROOF_KEY_FILE"])
    context.load_verify_locations(ENV["TRUSTPROOF_BUNDLE_FILE"])
    context.verify_mode = ssl.CERT_REQUIRED
    server = ThreadingHTTPServer((ENV["TRUSTPROOF_HOST"], int(ENV["TRUSTPROOF_PORT"])), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
