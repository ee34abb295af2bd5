"""The surface exercisers drive a sandbox through (`SandboxView`), the typed attempts they send
and the answers they get, and an in-memory fake (`trustproof.view.fake`). Core layer: no sockets
here; the live adapter is `trustproof.sandbox.view`."""

from trustproof.view.exchange import (
    BROKEN_CERT_MAKERS,
    CertKind,
    ClientCert,
    DbAnswer,
    DbCredential,
    DbRequest,
    DbStatus,
    Door,
    Exchange,
    FailureKind,
    HttpAnswer,
    HttpRequest,
    Listener,
    SslMode,
    TlsOffer,
    Transport,
    TransportFailure,
)
from trustproof.view.protocol import Channel, SandboxView

__all__ = [
    "BROKEN_CERT_MAKERS",
    "CertKind",
    "Channel",
    "ClientCert",
    "DbAnswer",
    "DbCredential",
    "DbRequest",
    "DbStatus",
    "Door",
    "Exchange",
    "FailureKind",
    "HttpAnswer",
    "HttpRequest",
    "Listener",
    "SandboxView",
    "SslMode",
    "TlsOffer",
    "Transport",
    "TransportFailure",
]
