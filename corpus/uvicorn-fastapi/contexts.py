"""The TLS context of each new connection: built afresh from the files at start and on SIGHUP.

uvicorn keeps the one `ssl.SSLContext` it was given for its listening socket, and a context's
revocation lists can only grow: `load_verify_locations(CRL)` on SIGHUP *adds* the new CRL beside
the old ones. OpenSSL then checks a certificate against the CRL of its issuer with the latest
lastUpdate, and of two with the same one (lastUpdate counts whole seconds) against the first
loaded: a certificate revoked within the second after the previous CRL was issued would still be
accepted. So the context uvicorn holds only starts the handshake: its `sni_callback`, which
OpenSSL runs on every ClientHello (with or without a server name), hands the connection the
current context: the current certificate, the bundle and the current CRL alone.
"""

from __future__ import annotations

import ssl
import sys
from collections.abc import Callable


class Contexts:
    """The current server context (`current`) and the listening context that hands it over.

    `reload` is the SIGHUP handler. Python runs a signal handler nested inside the one it
    interrupts: a SIGHUP arriving while a reload reads the files would run the second reload to
    its end first, and the first would then finish last, with the older files. So a SIGHUP
    during a reload only asks the running one to read the files once more when it is done.
    """

    def __init__(self, build: Callable[[], ssl.SSLContext]) -> None:
        self._build = build
        self.current = build()
        self._running = False
        self._again = False

    def listening(self) -> ssl.SSLContext:
        """The context for uvicorn's listening socket: each connection gets `current`."""
        context = self._build()
        context.sni_callback = self._hand_over
        return context

    def _hand_over(
        self, connection: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, _: object
    ) -> None:
        connection.context = self.current

    def reload(self, *_: object) -> None:
        """SIGHUP: the rotated certificate and the fresh CRL, for the connections to come (on a
        failure the previous context stays: it is a complete set)."""
        if self._running:
            self._again = True
            return
        self._running = True
        try:
            self._again = True
            while self._again:
                self._again = False
                try:
                    self.current = self._build()
                except OSError as exc:  # ssl.SSLError too: a key that does not match
                    print(
                        f"reload failed, keeping the previous files: {type(exc).__name__}",
                        file=sys.stderr,
                    )
        finally:
            self._running = False
