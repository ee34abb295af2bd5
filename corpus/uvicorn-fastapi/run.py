"""Start uvicorn on the sandbox's address with the ledger app, mutual TLS from `tokencheck`."""

from __future__ import annotations

import os

import uvicorn
from app import PeerCertProtocol, app, ssl_context_factory

if __name__ == "__main__":
    uvicorn.run(
        app,
        host=os.environ["TRUSTPROOF_HOST"],
        port=int(os.environ["TRUSTPROOF_PORT"]),
        http=PeerCertProtocol,
        ssl_context_factory=ssl_context_factory,
        ssl_certfile=os.environ["TRUSTPROOF_CERT_FILE"],  # uvicorn turns TLS on only with a cert
        log_level="warning",
        server_header=False,
    )
