"""The files a service that validates tokens itself reads: the token service's JWKS, the signing
public keys as PEM, its certificate chain and key in one PEM, and the CA's CRLs.

They sit next to the service's SVID files (``<run>/identities/<service>/``) and are rewritten
atomically (write to a temporary file, then rename: a server reloading at that moment reads the
old file or the new one, never half of one):

* ``jwks.json`` and ``signing-keys.pem`` whenever the signing keys change — a rotation (the new
  active key and the retired one, which keeps verifying its unexpired tokens: during the overlap
  both) and a prune (the retired key leaves once its last token has expired); with them
  ``signing-key-current.pem`` (the active key alone) and ``signing-key-previous.pem`` (the most
  recently retired key still verifying, else the active key again) for servers that take one key
  per file, like HAProxy's ``jwt_verify`` (one check per file, or-ed);
* ``crl.pem`` whenever the CRL changes (a certificate is revoked, a root rotates) and at each
  rotation of the service's SVID;
* ``cert-key.pem`` (0600) at each rotation of the service's SVID.

Deciding *whether* something changed is sans-I/O (`TrustState`, compared by value); writing is
`write_trust_files` / `write_cert_key`; `TrustFileWatch` ties them together. The sandbox
(`controller`) writes them at start and on every SVID rotation, and asks the watch to check when
the key ring says its keys changed and at every tick of its renewal ticker (a revocation, a
retired key whose last token expired); the watch then reloads the services that validate tokens
themselves.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from trustproof.identity import CertificateAuthority, Rotator, Svid
from trustproof.spec.model import Spec
from trustproof.tokens import KeyRing

JWKS_FILE = "jwks.json"
SIGNING_KEYS_FILE = "signing-keys.pem"
SIGNING_KEY_CURRENT_FILE = "signing-key-current.pem"
SIGNING_KEY_PREVIOUS_FILE = "signing-key-previous.pem"
CERT_KEY_FILE = "cert-key.pem"
CRL_FILE = "crl.pem"
PUBLIC_MODE = 0o644
KEY_MODE = 0o600
log = logging.getLogger("trustproof.sandbox")


@dataclass(frozen=True)
class TrustState:
    """What the shared trust files say: the published key ids (active first) and the CRL bytes.

    Two states compare equal exactly when the files written from them would be the same.
    """

    kids: tuple[str, ...]
    crl: bytes

    @classmethod
    def of(cls, keys: KeyRing, crl_pem: bytes) -> TrustState:
        return cls(keys.kids, crl_pem)

    def changes(self, previous: TrustState | None) -> tuple[str, ...]:
        """What changed since `previous` ("keys", "crl"); everything when there is none."""
        if previous is None:
            return ("keys", "crl")
        changed = []
        if self.kids != previous.kids:
            changed.append("keys")
        if self.crl != previous.crl:
            changed.append("crl")
        return tuple(changed)


def jwks_bytes(keys: KeyRing) -> bytes:
    """The JWK Set the token service publishes at ``/jwks.json`` (RFC 7517), as a file."""
    return json.dumps(keys.jwks(), indent=2, sort_keys=True).encode() + b"\n"


def _public_pem(keys: KeyRing, kid: str) -> bytes:
    public = keys.public_key(kid)
    if public is None:  # left the ring between the two reads: nothing to publish
        return b""
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def current_and_previous_pem(keys: KeyRing) -> tuple[bytes, bytes]:
    """The active key, and the most recently retired key still verifying (the active key again
    when there is none), each alone as a PEM public key."""
    kids = keys.kids
    current = _public_pem(keys, kids[0])
    previous = _public_pem(keys, kids[1]) if len(kids) > 1 else current
    return current, previous or current


def signing_keys_pem(keys: KeyRing) -> bytes:
    """Every verification key in the JWKS as a PEM public key (SubjectPublicKeyInfo), active key
    first, each preceded by a ``# kid`` comment line (PEM readers skip text between blocks).

    HAProxy's ``jwt_verify`` and most JWT libraries take one of these; during an overlap the
    file holds the active key and the retired one."""
    out: list[bytes] = []
    for kid in keys.kids:
        pem = _public_pem(keys, kid)
        if pem:
            out.append(f"# kid {kid}\n".encode() + pem)
    return b"".join(out)


def cert_key_bytes(svid: Svid) -> bytes:
    """The certificate chain (leaf first) followed by the private key, as HAProxy's ``crt``
    wants it. Secret: written 0600 only."""
    return svid.cert_chain_pem() + svid.key_pem()


def write_atomically(path: Path, data: bytes, mode: int) -> None:
    """Write `data` to `path` with `mode` through a temporary file and a rename."""
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)
    os.replace(temporary, path)


def write_trust_files(directory: Path, keys: KeyRing, crl_pem: bytes) -> None:
    """Write ``jwks.json``, the signing-key PEM files and ``crl.pem`` into `directory` (all
    public)."""
    current, previous = current_and_previous_pem(keys)
    write_atomically(directory / JWKS_FILE, jwks_bytes(keys), PUBLIC_MODE)
    write_atomically(directory / SIGNING_KEYS_FILE, signing_keys_pem(keys), PUBLIC_MODE)
    write_atomically(directory / SIGNING_KEY_CURRENT_FILE, current, PUBLIC_MODE)
    write_atomically(directory / SIGNING_KEY_PREVIOUS_FILE, previous, PUBLIC_MODE)
    write_atomically(directory / CRL_FILE, crl_pem, PUBLIC_MODE)


def write_cert_key(directory: Path, svid: Svid) -> None:
    """Write ``cert-key.pem`` (chain + key, 0600) into `directory`."""
    write_atomically(directory / CERT_KEY_FILE, cert_key_bytes(svid), KEY_MODE)


class TrustFileWatch:
    """Keeps every service's shared trust files in step with the key ring and the CA's CRL.

    `check()` is cheap when nothing changed (the key ids and the CA's cached CRL, compared by
    value): the key ring calls it when it rotates or prunes, the sandbox's ticker every tick (a
    revocation, a retired key whose last token expired). When something changed it rewrites the
    files of every service in `directories`, then calls `reload` for each service `reloaded`
    names (those that validate tokens themselves).
    """

    def __init__(
        self,
        keys: KeyRing,
        ca: CertificateAuthority,
        directories: Mapping[str, Path],
        reload: Callable[[str], None],
        reloaded: Iterable[str],
    ) -> None:
        self._keys = keys
        self._ca = ca
        self._directories = dict(directories)
        self._reload = reload
        self._reloaded = tuple(reloaded)
        self._state: TrustState | None = None
        self._held: set[str] = set()  # services whose files a fault holds (`held`)
        self.rewrites = 0  # how many times the files were rewritten after the first write

    def check(self) -> tuple[str, ...]:
        """Rewrite and reload if the keys or the CRL changed; what changed ("keys", "crl")."""
        state = TrustState.of(self._keys, self._ca.crl_pem())
        changes = state.changes(self._state)
        if not changes:
            return ()
        first = self._state is None
        for name, directory in self._directories.items():
            if name not in self._held:
                write_trust_files(directory, self._keys, state.crl)
        self._state = state
        if first:
            return changes
        self.rewrites += 1
        log.info("trust files rewritten (%s changed)", " and ".join(changes))
        for name in self._reloaded:
            if name not in self._held:
                self._reload(name)
        return changes

    def holds(self, name: str) -> bool:
        """Whether a fault holds `name`'s files now (`held`): nothing else may write them."""
        return name in self._held

    @contextmanager
    def held(self, names: Iterable[str]) -> Iterator[None]:
        """While a fault holds the files of `names` (a CRL removed, wrong keys written), the
        watch writes and reloads every other service only — a tick would otherwise put the real
        files back under the fault; after it, their files are the current ones again (the
        fault's rollback tells the services)."""
        chosen = set(names) - self._held
        self._held |= chosen
        try:
            yield
        finally:
            self._held -= chosen
            if self._state is not None:
                for name in chosen:
                    write_trust_files(self._directories[name], self._keys, self._state.crl)


def watch_trust_files(
    spec: Spec,
    keys: KeyRing,
    ca: CertificateAuthority,
    rotators: Mapping[str, Rotator],
    reload: Callable[[str], None],
) -> TrustFileWatch:
    """The sandbox's watch: every service's files written now, rewritten when the key ring says
    its keys changed (and whenever `check()` is called); the services with ``gateway: none`` and a
    ``reload:`` are reloaded after each rewrite."""
    watch = TrustFileWatch(
        keys,
        ca,
        {name: rotator.files.directory for name, rotator in rotators.items()},
        reload,
        [
            name
            for name, service in spec.services.items()
            if service.ingress.gateway == "none" and service.reload != "none"
        ],
    )
    watch.check()  # the first write
    keys.subscribe(watch.check)
    return watch
