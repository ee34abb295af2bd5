"""The surface exercisers drive a sandbox through (`SandboxView`), the typed attempts they send
and the answers they get, and an in-memory fake (`trustproof.view.fake`). Core layer: no sockets
here; the live adapter is `trustproof.sandbox.view`."""

from trustproof.view.exchange import (
    BROKEN_CERT_MAKERS,
    WEAK_CIPHERS,
    AdvertisedCas,
    CaNames,
    CaScan,
    CertKind,
    ClientCert,
    DbAnswer,
    DbCredential,
    DbRequest,
    DbStatus,
    Door,
    Exchange,
    FailureKind,
    HostVariant,
    HttpAnswer,
    HttpRequest,
    SslMode,
    TlsOffer,
    TransportFailure,
)
from trustproof.view.protocol import Channel, SandboxView

__all__ = [
    "BROKEN_CERT_MAKERS",
    "WEAK_CIPHERS",
    "AdvertisedCas",
    "CaNames",
    "CaScan",
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
    "HostVariant",
    "HttpAnswer",
    "HttpRequest",
    "SandboxView",
    "SslMode",
    "TlsOffer",
    "TransportFailure",
]
