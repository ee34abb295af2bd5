"""Keep a workload's SVID files fresh: re-issue before expiry, write atomically, tell the workload.

The files a service reads (``cert.pem``, ``key.pem``, ``bundle.pem``) live in a 0700 directory;
the key file is created 0600 (``os.open`` with the mode), so it is never readable by others, not
even for a moment.
Each file is replaced atomically (temporary file in the same directory, fsync, ``os.replace``),
so a reader sees the old file or the new one, never half of one. The three files are replaced one
after the other, so subscribers are told only once all three are in place: that is when a
service should reload. This is the only module of the package that writes to the disk.

A Rotator without a directory keeps its SVID in memory only: the sandbox's own identities (the
token service's server certificate) rotate the same way without a key file on disk.

Renewal is due once `fraction` of the *forward* validity has passed: measured from the moment of
issue to ``not_after``, not from ``not_before``, which the CA moves back (``backdate``) to absorb
clock differences. With a 30-second backdate and a 10-second TTL, "half of not_before..not_after"
would already be past at issue and a rotator would renew on every tick.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from trustproof.clock import Clock
from trustproof.identity.ca import CertificateAuthority
from trustproof.identity.errors import IdentityError
from trustproof.identity.svid import Svid
from trustproof.scrub import scrubbed_traceback

log = logging.getLogger("trustproof.identity")

DIR_MODE = 0o700
KEY_MODE = 0o600
PUBLIC_MODE = 0o644


@dataclass(frozen=True)
class SvidFiles:
    """Where an SVID was written: the chain, the key and the trust bundle."""

    directory: Path
    cert: Path
    key: Path
    bundle: Path


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        try:
            os.fchmod(fd, mode)  # the umask may have taken bits away; make the mode exact
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def prepare_directory(directory: Path) -> None:
    """Create `directory` with mode 0700, or tighten an existing one to 0700.

    It is meant for the run's own per-workload directories; a symlink is refused, so that key
    files cannot be redirected elsewhere.
    """
    if directory.is_symlink():
        raise IdentityError(
            f"refusing to write key material through the symlink {directory}\n"
            "    hint: give the real path of a directory inside the run directory"
        )
    directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    os.chmod(directory, DIR_MODE)


def write_svid_files(directory: Path, svid: Svid, bundle_pem: bytes) -> SvidFiles:
    """Write ``bundle.pem``, ``key.pem`` (0600) and ``cert.pem`` (leaf + intermediates).

    The bundle goes first, so a reader that sees the new certificate also trusts its root.
    Raises `IdentityError` (from the OSError) if the directory cannot be written.
    """
    files = SvidFiles(
        directory, directory / "cert.pem", directory / "key.pem", directory / "bundle.pem"
    )
    try:
        prepare_directory(directory)
        _write_atomically(files.bundle, bundle_pem, PUBLIC_MODE)
        _write_atomically(files.key, svid.key_pem(), KEY_MODE)
        _write_atomically(files.cert, svid.cert_chain_pem(), PUBLIC_MODE)
        _fsync_directory(directory)
    except OSError as exc:
        raise IdentityError(
            f"could not write the SVID files for {svid.spiffe_id} to {directory}: "
            f"{exc.strerror or exc}\n    hint: is the run directory writable and on a local disk?"
        ) from exc
    return files


def renewal_time(svid: Svid, ttl: timedelta, fraction: float = 0.5) -> float:
    """Seconds since the epoch at which `svid`, issued with lifetime `ttl`, is due for renewal:
    `fraction` of the way from its issue (``not_after - ttl``) to ``not_after``.

    The issue time is read off ``not_after`` rather than ``not_before``, which the CA backdates;
    a certificate shorter than `ttl` (say one the CA cut at its own end) counts from
    ``not_before``.
    """
    forward = min(ttl.total_seconds(), svid.lifetime)
    return svid.not_after.timestamp() - (1 - fraction) * forward


class Rotator:
    """Holds one identity's current SVID and replaces it once `fraction` of its validity is used.

    Creating a Rotator issues the first SVID and, given a `directory`, writes its files at once
    (without one, the SVID lives in memory only and `files` is an error). `tick()` is meant to be
    called periodically by whoever owns the event loop; nothing here sleeps or starts threads.
    """

    def __init__(
        self,
        ca: CertificateAuthority,
        clock: Clock,
        name: str,
        ttl: timedelta,
        directory: Path | None,
        *,
        fraction: float = 0.5,
        dns: Sequence[str] = (),
        ips: Sequence[str] = (),
    ) -> None:
        if not 0 < fraction < 1:
            raise IdentityError(
                f"expected a rotation fraction between 0 and 1 (exclusive), got {fraction}\n"
                "    hint: 0.5 renews at half-life, leaving the other half as overlap"
            )
        self.ca = ca
        self.clock = clock
        self.name = name
        self.ttl = ttl
        self.directory = directory
        self.fraction = fraction
        self.dns = tuple(dns)
        self.ips = tuple(ips)
        self._lock = threading.RLock()
        self._subscribers: list[Callable[[Svid], None]] = []
        self._current = self._issue()
        self._files = self._write(self._current)

    def __repr__(self) -> str:
        return f"Rotator({self.name!r}, current={self._current!r}, directory={self.directory})"

    @property
    def current(self) -> Svid:
        return self._current

    @property
    def files(self) -> SvidFiles:
        """Where the current SVID is on disk; `IdentityError` for an in-memory rotator."""
        if self._files is None:
            raise IdentityError(
                f"the SVID of {self.name} is kept in memory only; it has no files\n"
                "    hint: give the Rotator a directory to have it written"
            )
        return self._files

    def _write(self, svid: Svid) -> SvidFiles | None:
        if self.directory is None:
            return None
        return write_svid_files(self.directory, svid, self.ca.bundle_pem())

    def _issue(self) -> Svid:
        return self.ca.issue(self.name, self.ttl, dns=self.dns, ips=self.ips)

    def renew_at(self) -> float:
        """Seconds since the epoch at which the current SVID is due for renewal."""
        return renewal_time(self._current, self.ttl, self.fraction)

    def due(self) -> bool:
        """True once `fraction` of the current SVID's validity (from its issue) has passed."""
        return self.clock.now().timestamp() >= self.renew_at()

    def rotate(self) -> Svid:
        """Issue a new SVID, write its files, then call every subscriber with it.

        A subscriber that raises is logged and skipped; the others are still called and the
        rotation stands.
        """
        with self._lock:
            svid = self._issue()
            self._files = self._write(svid)
            self._current = svid
            subscribers = list(self._subscribers)
        log.info("rotated the SVID of %s (serial %x)", svid.spiffe_id, svid.serial)
        self._notify(subscribers, svid)
        return svid

    def publish_bundle(self) -> None:
        """Rewrite only ``bundle.pem`` (e.g. after ``ca.rotate_root(activate=False)``), then notify.

        Staged CA rotation: add the new root, publish it to every workload, and only then
        ``ca.activate_root()``, so that no peer is shown a leaf it cannot verify yet.
        """
        with self._lock:
            if self._files is not None:
                try:
                    _write_atomically(self._files.bundle, self.ca.bundle_pem(), PUBLIC_MODE)
                except OSError as exc:
                    raise IdentityError(
                        f"could not write {self._files.bundle}: {exc.strerror or exc}"
                    ) from exc
            svid, subscribers = self._current, list(self._subscribers)
        self._notify(subscribers, svid)

    def _notify(self, subscribers: list[Callable[[Svid], None]], svid: Svid) -> None:
        for callback in subscribers:
            try:
                callback(svid)
            except Exception as exc:
                log.error(
                    "a subscriber to %s's SVID rotation failed; continuing:\n%s",
                    self.name,
                    scrubbed_traceback(exc),
                )

    def tick(self) -> bool:
        """Rotate if due; return whether it did."""
        if not self.due():
            return False
        self.rotate()
        return True

    def subscribe(self, callback: Callable[[Svid], None]) -> Callable[[], None]:
        """Call `callback(svid)` after each rotation; returns a function that unsubscribes it."""
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe
