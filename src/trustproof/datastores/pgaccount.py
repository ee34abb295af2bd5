"""The operating-system account PostgreSQL runs as, and the file ownership that follows from it.

PostgreSQL refuses to run as root (a compromised server would own the machine). So when the
controller is root — the usual case in CI containers and `make test` — `initdb` and `postgres` run
as the ``postgres`` account the Debian package creates, with no supplementary groups and a minimal
environment (nothing of the controller's environment, which may hold tokens, reaches them). Every
file the server reads or writes is then owned by that account: PostgreSQL insists that its data
directory and its TLS key are not readable by anyone else.

When the controller is an ordinary user, the server simply runs as that user.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trustproof.datastores.errors import INSTALL_HINT, DatastoreError

SERVER_ACCOUNT = "postgres"
CHILD_ENV = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "LANG": "C"}
"""The whole environment of `initdb` and `postgres`: nothing of the controller's leaks in."""


@dataclass(frozen=True)
class ServerAccount:
    """Who owns the server's files and processes; `switch` is True when that is not us."""

    name: str
    uid: int
    gid: int
    switch: bool

    @classmethod
    def for_this_process(cls) -> ServerAccount:
        """``postgres`` when we are root, else the current user."""
        uid = os.geteuid()
        if uid != 0:
            entry = pwd.getpwuid(uid)
            return cls(entry.pw_name, uid, os.getegid(), switch=False)
        try:
            entry = pwd.getpwnam(SERVER_ACCOUNT)
        except KeyError:
            raise DatastoreError(
                "running as root, but there is no 'postgres' account to run PostgreSQL as "
                "(PostgreSQL refuses to run as root)",
                f"{INSTALL_HINT}; the package creates the account. Or run as an ordinary user.",
            ) from None
        return cls(entry.pw_name, entry.pw_uid, entry.pw_gid, switch=True)

    def popen_options(self) -> dict[str, Any]:
        """Keyword arguments for `subprocess.Popen` that run the child as this account."""
        options: dict[str, Any] = {"env": dict(CHILD_ENV)}
        if self.switch:
            # extra_groups=[] drops root's supplementary groups instead of inheriting them.
            options.update(user=self.uid, group=self.gid, extra_groups=[])
        return options

    def own(self, path: Path, mode: int | None = None) -> None:
        """Give `path` to this account (when switching), then set `mode` if given."""
        if self.switch:
            os.chown(path, self.uid, self.gid, follow_symlinks=False)
        if mode is not None:
            os.chmod(path, mode)

    def own_tree(self, root: Path) -> None:
        """Give `root` and everything under it to this account (no-op when not switching)."""
        if not self.switch:
            return
        os.chown(root, self.uid, self.gid, follow_symlinks=False)
        for directory, dirs, files in os.walk(root):
            for name in (*dirs, *files):
                os.chown(os.path.join(directory, name), self.uid, self.gid, follow_symlinks=False)

    def write_file(self, path: Path, data: bytes, mode: int) -> None:
        """Atomically replace `path` with `data`, owned by this account with exactly `mode`.

        A reader (PostgreSQL reloading its certificate) sees the old file or the new one, never a
        partial one; the temporary name is unique and opened with O_EXCL and O_NOFOLLOW.
        """
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        try:
            with os.fdopen(fd, "wb") as handle:
                if self.switch:
                    os.fchown(handle.fileno(), self.uid, self.gid)
                os.fchmod(handle.fileno(), mode)  # the umask may have taken bits away
                handle.write(data)
            os.replace(temporary, path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise

    def private_dir(self, path: Path) -> Path:
        """Create `path` (0700) owned by this account; refuse a symlink."""
        if path.is_symlink():
            raise DatastoreError(
                f"refusing to use the symlink {path} as a PostgreSQL directory",
                "give the real path of a directory inside the run directory",
            )
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.own(path, 0o700)
        return path

    def scratch_dir(self, prefix: str, root: Path | None = None) -> Path:
        """A fresh 0700 directory owned by this account under `root` (default: the system
        temporary directory), for the files the server itself reads and writes.

        The run directory is the controller's (0700) and, when switching accounts, closed to the
        server; and a throwaway cluster is best kept in memory anyway (see `scratch_root`).
        """
        path = Path(tempfile.mkdtemp(prefix=prefix, dir=root))
        try:
            self.own(path, 0o700)
            blocked = self.blocked_ancestor(path)
            if blocked is not None:
                raise DatastoreError(
                    f"the account {self.name!r} cannot reach {path}: {blocked} is closed to it",
                    "point TMPDIR at a world-traversable directory such as /tmp",
                )
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise
        return path

    def blocked_ancestor(self, path: Path) -> Path | None:
        """The first directory above `path` this account may not traverse, or None."""
        for directory in reversed(path.absolute().parents):
            info = directory.stat()
            if info.st_uid == self.uid:
                allowed = info.st_mode & stat.S_IXUSR
            elif info.st_gid == self.gid:
                allowed = info.st_mode & stat.S_IXGRP
            else:
                allowed = info.st_mode & stat.S_IXOTH
            if not allowed and self.uid != 0:
                return directory
        return None


SHM = Path("/dev/shm")  # noqa: S108 (only ever used through mkdtemp)
SHM_MIN_FREE = 256 * 1024 * 1024


def scratch_root(shm: Path = SHM, min_free: int = SHM_MIN_FREE) -> Path | None:
    """``/dev/shm`` when it is a usable tmpfs with room to spare, else None (the temp directory).

    A data directory in memory is ten times faster to create than one on a virtual disk (about
    60 ms against 700 ms for the ~30 MB template on the CI VMs we measured), and the cluster is
    thrown away at the end of the run anyway. Containers often give /dev/shm only 64 MB, which a
    seed could fill; below `min_free` the disk is used instead.
    """
    try:
        info = os.statvfs(shm)
        usable = shm.is_dir() and os.access(shm, os.W_OK | os.X_OK)
    except OSError:
        return None
    return shm if usable and info.f_bavail * info.f_frsize >= min_free else None
