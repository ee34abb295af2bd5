"""The run directory: everything one sandbox run writes, in one private (0700) place.

    <run>/state.json        endpoints, pids, URLs (what `status` shows)
    <run>/pids              process groups started (what `down` kills after a SIGKILLed controller)
    <run>/control.sock      the running controller's local API (token, cert, status, shutdown)
    <run>/logs/<name>.log   trustproof's own processes' logs (controller, reaper, ...), scrubbed
                            (0600 from creation on)
    <run>/logs/<service>.log.tpa  each service's output, scrubbed and encrypted under the
                            audit KEK (`trustproof.audit.servicelog`; ``trustproof audit logs``)
    <run>/audit.jsonl       the gateways' decisions (0600; runs before the encrypted log)
    <run>/audit.log         the run's encrypted, hash-chained audit log (0600; `trustproof.audit`)
    <run>/identities/<name>/{cert,key,bundle}.pem   workload SVIDs, rotated in place (secret)
    <run>/identities/<name>/gateway-proof.key       the key its gateway signs requests with (secret)
    <run>/admin/            the admin identity the CLI uses to mint tokens (secret)
    <run>/previous/         the evidence of the run before this one (see `RunDir.begin`)
    <run>/containers        the engine and the containers of `image:` services (what `down`
                            removes after a SIGKILLed controller; `sandbox.containers`)
    <run>/podman/           the containers.conf and socket of a Podman service the run started

Key material is removed at teardown; logs, audit and state stay for the reports. Runs never mix:
a new run first moves the last run's evidence into ``previous/`` (replacing what was there), so
a failed start never shows an earlier run's traceback as its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:  # imported where used: the reaper reads this module and must start fast
    from trustproof.identity import Svid

DEFAULT_RUN_DIR = Path(".trustproof") / "run"


def private_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def open_private_log(path: Path) -> BinaryIO:
    """Open a log file for appending, created 0600 (never a moment at the umask's 0644), a file
    left by an earlier run set back to 0600, a symlink in its place refused (`O_NOFOLLOW`)."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(path, flags, 0o600)
    try:
        os.fchmod(fd, 0o600)
        return os.fdopen(fd, "ab")
    except BaseException:
        os.close(fd)
        raise


def _left(path: Path) -> bool:
    """Whether a run left `path`: a file, or a directory with something in it."""
    if path.is_dir() and not path.is_symlink():
        return any(path.iterdir())
    return path.exists() or path.is_symlink()


@dataclass(frozen=True)
class RunDir:
    path: Path

    @classmethod
    def create(cls, path: Path | None = None) -> RunDir:
        if path is None:
            path = Path(tempfile.mkdtemp(prefix="trustproof-run-"))
        run = cls(private_dir(path.absolute()))
        private_dir(run.logs)
        return run

    EVIDENCE = (
        "logs",
        "audit.jsonl",
        "results.json",
        "state.json",
        "reports",
        "rendered",
        "audit.log",
        "alerts.jsonl",
    )
    """What one run leaves behind; `begin` moves it aside before the next."""

    @property
    def previous(self) -> Path:
        return self.path / "previous"

    def begin(self) -> list[str]:
        """Start a new run here: move the last run's evidence into ``previous/`` (the one before
        it is dropped) and give the new run an empty ``logs/``; the names moved. Call it only
        once nothing runs here (`trustproof.sandbox.lifecycle.refuse_if_running`)."""
        found = [name for name in self.EVIDENCE if _left(self.path / name)]
        if found:
            shutil.rmtree(self.previous, ignore_errors=True)
            private_dir(self.previous)
            for name in found:
                os.replace(self.path / name, self.previous / name)
        private_dir(self.logs)
        return found

    @property
    def state_file(self) -> Path:
        return self.path / "state.json"

    @property
    def pids(self) -> Path:
        return self.path / "pids"

    @property
    def control_socket(self) -> Path:
        return self.path / "control.sock"

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    @property
    def audit(self) -> Path:
        return self.path / "audit.jsonl"

    @property
    def audit_log(self) -> Path:
        return self.path / "audit.log"

    @property
    def bundle(self) -> Path:
        return self.path / "admin" / "bundle.pem"

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def open_log(self, name: str) -> BinaryIO:
        """`logs/<name>.log`, opened for appending, 0600 from its creation on."""
        return open_private_log(self.log(name))

    def identity(self, name: str) -> Path:
        return private_dir(self.path / "identities") / name

    def gateway_proof_key(self, name: str) -> Path:
        return self.identity(name) / "gateway-proof.key"

    def write_gateway_proof_key(self, name: str, key: bytes) -> Path:
        """Write the key `name` checks its gateway's proofs with: raw bytes, 0600, in the 0700
        identity directory (removed with the other key material by `remove_secrets`)."""
        private_dir(self.identity(name))
        path = self.gateway_proof_key(name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(fd, 0o600)  # a file left by an earlier run keeps its mode otherwise
            handle.write(key)
        return path

    def datastore(self, name: str) -> Path:
        return private_dir(self.path / "datastores") / name

    def rendered(self, name: str) -> Path:
        return private_dir(self.path / "rendered" / name)

    def write_admin(self, svid: Svid, bundle_pem: bytes) -> None:
        from trustproof.identity import write_svid_files  # noqa: PLC0415 (see the imports)

        write_svid_files(self.path / "admin", svid, bundle_pem)

    def write_state(self, state: dict[str, Any]) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(state, handle, indent=2, sort_keys=True)
        os.replace(tmp, self.state_file)

    def read_state(self) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads(self.state_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data

    @property
    def externals(self) -> Path:
        return self.path / "externals"

    def note_external(self, directory: Path) -> None:
        """Remember a directory this run owns outside the run directory (removed by `down`)."""
        fd = os.open(self.externals, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as handle:
            handle.write(f"{directory}\n")

    def external_dirs(self) -> list[str]:
        try:
            return self.externals.read_text(encoding="utf-8").split()
        except FileNotFoundError:
            return []

    def remove_externals(self) -> None:
        """Delete the directories this run noted outside the run directory (PostgreSQL homes,
        with their server keys): after a crash, the reaper and `down` do."""
        for path in self.external_dirs():
            if Path(path).name.startswith("trustproof-pg-"):
                shutil.rmtree(path, ignore_errors=True)

    def service_log(self, name: str) -> Path:
        """`logs/<name>.log.tpa`: a service's output, encrypted (`trustproof.audit.servicelog`)."""
        return self.logs / f"{name}.log.tpa"

    def remove_secrets(self) -> None:
        """Delete every key the run wrote (identities, admin, datastore keys, the socket)."""
        for secret in ("identities", "admin"):
            shutil.rmtree(self.path / secret, ignore_errors=True)
        for key in (self.path / "datastores").glob("**/*.key"):
            with contextlib.suppress(OSError):
                key.unlink()
        with contextlib.suppress(OSError):
            self.control_socket.unlink()
