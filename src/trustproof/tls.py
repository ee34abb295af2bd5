"""TLS contexts for the sandbox's servers and clients, built from X.509-SVIDs.

Python's `ssl` module only loads certificates and keys from files, so the chain and key are
written to a fresh private temporary directory (0700, key 0600), loaded, and deleted at once;
the key exists on disk only for the duration of the load.

Every context speaks TLS 1.2 or newer only. Server contexts (gateways, token service) follow
Mozilla's "intermediate" profile (server-side TLS guidelines v5):

* TLS 1.2 suites: ECDHE with AES-GCM or ChaCha20-Poly1305 only (`TLS12_CIPHERS`), no CBC;
  TLS 1.3 suites are OpenSSL's three, all in the profile;
* key-exchange groups X25519, P-256 and P-384 only (`GROUPS`): no X448, no secp521r1;
* the CertificateRequest names the CAs of the trust bundle, so a client holding several
  certificates can pick the right one.

Python 3.11's `ssl` has no call for the last two (`set_ecdh_curve` takes a single curve, and
nothing sets the client CA list), so they are set on the context's ``SSL_CTX`` through
``libssl`` with ctypes (`_LibSsl`): the same library `_ssl` is linked to, the pointer read from
the context object and checked against `SSLContext.options` before any call that changes
anything. Where that check fails (another Python implementation or layout), the groups fall back
to P-256 alone (`set_ecdh_curve`, still within the profile) and the CA names are not sent; a
warning says so.

Every context made here times its handshakes in the TLS layer (`TimedSSLObject`): the time spent
inside OpenSSL's handshake calls — key exchange, signatures, certificate checks — without the
waits for the peer's flights or for the event loop between them (`handshake_us`).
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import ssl
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from trustproof.identity import Svid

log = logging.getLogger("trustproof.tls")
ClientCerts = Literal["required", "optional", "none"]
TLS12_CIPHERS = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    )
)
GROUPS = "X25519:P-256:P-384"
FALLBACK_CURVE = "prime256v1"
_SSL_CTRL_SET_GROUPS_LIST = 92  # OpenSSL's ssl.h


class _LibSsl:
    """The few libssl calls Python's `ssl` lacks, on the SSL_CTX of an `SSLContext`."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self.get_options = lib.SSL_CTX_get_options
        self.get_options.restype, self.get_options.argtypes = ctypes.c_uint64, [ctypes.c_void_p]
        self.ctrl = lib.SSL_CTX_ctrl
        self.ctrl.restype = ctypes.c_long
        self.ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
        self.load_names = lib.SSL_load_client_CA_file
        self.load_names.restype, self.load_names.argtypes = ctypes.c_void_p, [ctypes.c_char_p]
        self.set_names = lib.SSL_CTX_set_client_CA_list
        self.set_names.restype = None
        self.set_names.argtypes = [ctypes.c_void_p, ctypes.c_void_p]

    def pointer(self, context: ssl.SSLContext) -> int | None:
        """The context's SSL_CTX*, or None unless it demonstrably is one: CPython keeps it
        right after the object header; its options must read back as `context.options`, also
        after a change made through Python."""
        address = ctypes.c_void_p.from_address(id(context) + object.__basicsize__).value
        if not address or self.get_options(address) != context.options:
            return None
        before = context.options
        context.options = before ^ ssl.OP_NO_TICKET
        seen = self.get_options(address)
        context.options = before
        return address if seen == before ^ ssl.OP_NO_TICKET else None


@functools.cache
def _libssl() -> _LibSsl | None:
    if sys.implementation.name != "cpython":
        return None
    try:
        import _ssl  # noqa: PLC0415 (the module whose libssl we must use)

        return _LibSsl(ctypes.CDLL(_ssl.__file__))
    except (OSError, AttributeError, ImportError):
        return None


def _ctx(context: ssl.SSLContext) -> tuple[_LibSsl, int] | None:
    lib = _libssl()
    address = lib.pointer(context) if lib is not None else None
    if lib is None or address is None:
        log.warning(
            "cannot reach OpenSSL's SSL_CTX from Python here: offering P-256 only and no "
            "CA names in the CertificateRequest"
        )
        return None
    return lib, address


def set_groups(context: ssl.SSLContext, groups: str = GROUPS) -> bool:
    """Limit key exchange to `groups` (OpenSSL list syntax); False if only the fallback curve
    could be set."""
    found = _ctx(context)
    if found is not None and found[0].ctrl(
        found[1], _SSL_CTRL_SET_GROUPS_LIST, 0, ctypes.c_char_p(groups.encode("ascii"))
    ):
        return True
    context.set_ecdh_curve(FALLBACK_CURVE)
    return False


def advertise_ca_names(context: ssl.SSLContext, bundle_pem: bytes) -> bool:
    """Name the subjects of the bundle's certificates in every CertificateRequest (replacing the
    names set before); False if that cannot be done here."""
    found = _ctx(context)
    if found is None:
        return False
    lib, address = found
    with tempfile.TemporaryDirectory(prefix="trustproof-tls-") as tmp:
        path = Path(tmp, "bundle.pem")
        path.write_bytes(bundle_pem)
        names = lib.load_names(os.fsencode(path))
    if not names:
        return False
    lib.set_names(address, names)  # the context owns the list from here
    return True


def trust(context: ssl.SSLContext, bundle_pem: bytes) -> None:
    """Add the bundle's roots to a server context's trust store and advertise its CA names."""
    context.load_verify_locations(cadata=bundle_pem.decode("ascii"))
    advertise_ca_names(context, bundle_pem)


@contextmanager
def _key_files(svid: Svid) -> Iterator[tuple[Path, Path]]:
    """The chain and the key as files OpenSSL can open (`load_cert_chain` reads only files):
    anonymous memory files (``memfd_create``, opened by their ``/proc/self/fd`` path) where the
    system has them — the key never on a disk, and no directory to create and remove, which
    was most of a TLS context's cost (the suite makes one per presented identity) — else 0600
    files in a private temporary directory."""
    memory = _memory_files(svid.cert_chain_pem(), svid.key_pem())
    if memory is not None:
        fds = memory
        try:
            yield Path(f"/proc/self/fd/{fds[0]}"), Path(f"/proc/self/fd/{fds[1]}")
        finally:
            for fd in fds:
                os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="trustproof-tls-") as tmp:
        cert, key = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
        cert.write_bytes(svid.cert_chain_pem())
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(svid.key_pem())
        yield cert, key


def _memory_files(*contents: bytes) -> tuple[int, ...] | None:
    """One anonymous memory file per content (descriptors, the caller closes them), or None where
    there are none (not Linux, no ``/proc``, or refused by a sandbox)."""
    create = getattr(os, "memfd_create", None)
    if create is None or not os.path.isdir("/proc/self/fd"):
        return None
    fds: list[int] = []
    try:
        for content in contents:
            fds.append(create("trustproof-tls", os.MFD_CLOEXEC))
            view = memoryview(content)
            while view:
                view = view[os.write(fds[-1], view) :]
    except OSError:
        for fd in fds:
            os.close(fd)
        return None
    return tuple(fds)


def load_svid(context: ssl.SSLContext, svid: Svid) -> None:
    """Make `context` present `svid` (leaf + intermediates)."""
    with _key_files(svid) as (cert, key):
        context.load_cert_chain(cert, key)


def server_context(
    svid: Svid, bundle_pem: bytes, *, client_certs: ClientCerts = "optional"
) -> ssl.SSLContext:
    """A server context presenting `svid` and checking client certificates against the bundle,
    to Mozilla's intermediate profile (module docstring)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    set_groups(context)
    context.verify_mode = {
        "required": ssl.CERT_REQUIRED,
        "optional": ssl.CERT_OPTIONAL,
        "none": ssl.CERT_NONE,
    }[client_certs]
    if client_certs != "none":
        trust(context, bundle_pem)
    load_svid(context, svid)
    context.sslobject_class = TimedSSLObject
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
    context.sslobject_class = TimedSSLObject
    return context


class TimedSSLObject(ssl.SSLObject):
    """An `ssl.SSLObject` (what asyncio's TLS transport drives) that times its own handshake:
    `handshake_ns` adds up the time spent inside each `do_handshake` call — OpenSSL's own work —
    and leaves out the waits between calls (the peer's next flight, a busy event loop).
    Installed per context: ``context.sslobject_class = TimedSSLObject``."""

    handshake_ns: int = 0
    handshake_done: bool = False

    def do_handshake(self) -> None:
        start = time.perf_counter_ns()
        try:
            super().do_handshake()
            self.handshake_done = True
        finally:
            self.handshake_ns += time.perf_counter_ns() - start


def handshake_us(ssl_object: object) -> float | None:
    """The TLS layer's own time for the completed handshake of a connection's ssl object
    (asyncio: ``transport.get_extra_info("ssl_object")``), in microseconds; None when it was not
    timed (a context not made here) or did not complete."""
    if not isinstance(ssl_object, TimedSSLObject) or not ssl_object.handshake_done:
        return None
    return ssl_object.handshake_ns / 1000
