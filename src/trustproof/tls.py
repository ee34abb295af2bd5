"""TLS contexts for the sandbox's servers and clients, built from X.509-SVIDs.

Python's `ssl` module only loads certificates and keys from files, so the chain and key are
written to a fresh private temporary directory (0700, key 0600), loaded, and deleted at once;
the key exists on disk only for the duration of the load.

Every context speaks TLS 1.2 or newer only.
"""

from __future__ import annotations

import os
import ssl
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from trustproof.identity import Svid

ClientCerts = Literal["required", "optional", "none"]


@contextmanager
def _key_files(svid: Svid) -> Iterator[tuple[Path, Path]]:
    with tempfile.TemporaryDirectory(prefix="trustproof-tls-") as tmp:
        cert, key = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
        cert.write_bytes(svid.cert_chain_pem())
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(svid.key_pem())
        yield cert, key


def load_svid(context: ssl.SSLContext, svid: Svid) -> None:
    """Make `context` present `svid` (leaf + intermediates)."""
    with _key_files(svid) as (cert, key):
        context.load_cert_chain(cert, key)


def server_context(
    svid: Svid, bundle_pem: bytes, *, client_certs: ClientCerts = "optional"
) -> ssl.SSLContext:
    """A server context presenting `svid` and checking client certificates against the bundle."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = {
        "required": ssl.CERT_REQUIRED,
        "optional": ssl.CERT_OPTIONAL,
        "none": ssl.CERT_NONE,
    }[client_certs]
    if client_certs != "none":
        context.load_verify_locations(cadata=bundle_pem.decode("ascii"))
    load_svid(context, svid)
    return context


def client_context(bundle_pem: bytes, svid: Svid | None = None) -> ssl.SSLContext:
    """A client context trusting only the sandbox's bundle, presenting `svid` when given.

    Host names are not checked: sandbox servers are addressed by loopback IP and identified by
    their SPIFFE ID, which the caller checks on the peer certificate where it matters.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=bundle_pem.decode("ascii"))
    if svid is not None:
        load_svid(context, svid)
    return context
