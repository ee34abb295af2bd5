"""Where the audit log's key-encryption key (KEK) comes from, first found wins:

1. a key file named on the command line (``--kek-file``);
2. the environment variable ``TRUSTPROOF_AUDIT_KEK`` (base64 of 32 bytes);
3. the spec's ``audit: {kek_file: ...}`` (relative to the spec's directory);
4. the per-user key file ``~/.config/trustproof/audit.kek`` (``$XDG_CONFIG_HOME`` when set),
   made once (0600, in a 0700 directory) when a run needs a key and none exists.

A key file holds the base64 of 32 random bytes. It is never inside the run directory (refused:
the key beside the log would protect nothing), and one that others may read is refused too.
"""

from __future__ import annotations

import base64
import binascii
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from trustproof.audit.crypto import KEY_BYTES, AuditKeyError

KEK_ENV = "TRUSTPROOF_AUDIT_KEK"


@dataclass(frozen=True)
class Kek:
    key: bytes = field(repr=False)
    source: str  # where it came from, for messages ("env TRUSTPROOF_AUDIT_KEK", a path)


def default_kek_path(env: Mapping[str, str] = os.environ) -> Path:
    config = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(config) / "trustproof" / "audit.kek"


def parse_kek(text: str, where: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise AuditKeyError(
            f"{where}: not a key-encryption key (expected the base64 of {KEY_BYTES} bytes)",
            "make one with: python -c 'import base64,os; print(base64.b64encode(os.urandom(32))"
            ".decode())'",
        )
    return key


def read_kek_file(path: Path, run_dir: Path | None = None) -> Kek:
    path = path.expanduser().absolute()
    if run_dir is not None and path.resolve().is_relative_to(run_dir.resolve()):
        raise AuditKeyError(
            f"{path}: the audit key file is inside the run directory",
            "keep the key-encryption key away from the log it protects (another directory)",
        )
    try:
        info = path.stat()
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise AuditKeyError(f"{path}: no such audit key file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AuditKeyError(f"{path}: cannot read the audit key file: {exc}") from None
    if stat.S_IMODE(info.st_mode) & 0o077:
        raise AuditKeyError(
            f"{path}: the audit key file is readable by others "
            f"(mode {stat.S_IMODE(info.st_mode):o})",
            f"chmod 600 {path}",
        )
    return Kek(parse_kek(text, str(path)), str(path))


def create_default(path: Path) -> None:
    """Make the per-user key file once (0600; a concurrent creator wins, its key is used)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(base64.b64encode(os.urandom(KEY_BYTES)).decode() + "\n")


def load_kek(
    *,
    kek_file: Path | None = None,
    spec_kek_file: Path | None = None,
    run_dir: Path | None = None,
    env: Mapping[str, str] = os.environ,
    create: bool = False,
) -> Kek:
    """The KEK by the order above; `create` makes the per-user file when nothing else names one
    (a run does; `audit show`/`verify` do not: a new key would decrypt nothing)."""
    if kek_file is not None:
        return read_kek_file(kek_file, run_dir)
    if env.get(KEK_ENV):
        return Kek(parse_kek(env[KEK_ENV], f"${KEK_ENV}"), f"${KEK_ENV}")
    if spec_kek_file is not None:
        return read_kek_file(spec_kek_file, run_dir)
    path = default_kek_path(env)
    if create and not path.exists():
        create_default(path)
    if not path.exists():
        raise AuditKeyError(
            f"no audit key-encryption key: none given and no per-user key file ({path})",
            f"pass --kek-file, or set {KEK_ENV} to the key the run was written with",
        )
    return read_kek_file(path, run_dir)
