"""A minimal Python container image built offline from this machine's Debian Python: no registry,
no download. For the `image:` example and the tests.

    image = build_image(client, Path("examples/containers/app"), "localhost/trustproof-example")
    # -> "localhost/trustproof-example:<content key>", in the engine, also tagged :latest

    python -m trustproof.sandbox.pyimage APP_DIR REPOSITORY     # the same, from a shell

The root filesystem holds the files Debian's packages installed for the interpreter: the binary
(``/usr/bin/python3`` resolved), the shared libraries it and its extension modules load (from
``ldd``, with their soname links and the dynamic loader), and its standard library without the
test suite, IDLE, Tk, ``ensurepip``, ``lib2to3``, ``site-packages``/``dist-packages`` and bytecode
caches — about 35 MB. Beside them: the app directory at ``/srv/app`` and trustproof's
standard-library-only contract modules (`trustproof.middleware`, `trustproof.gateway.proof`,
`trustproof.errors`) under ``/srv/lib``, on ``PYTHONPATH``. The image's command is
``python3 /srv/app/<the app's only .py file>`` (or pass `command`).

The tar is cached in ``$XDG_CACHE_HOME/trustproof/images`` (default ``~/.cache/...``), keyed by
a digest of everything in it (paths, sizes, modification times, the app's and the modules'
contents); the engine keeps the imported image under that key as its tag, so a second build
with nothing changed is a lookup. A cold build takes a few seconds (tar + import).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import trustproof
from trustproof.errors import SandboxError

BUILDER_VERSION = "2"
LEFT_OUT = frozenset(
    {
        "test",
        "idlelib",
        "tkinter",
        "turtledemo",
        "ensurepip",
        "lib2to3",
        "site-packages",
        "dist-packages",
        "__pycache__",
        "pydoc_data",
        "distutils",
    }
)
CONTRACT_MODULES = (
    "__init__.py",
    "errors.py",
    "gateway/__init__.py",
    "gateway/proof.py",
    "middleware/__init__.py",
    "middleware/contract.py",
    "middleware/asgi.py",
    "middleware/wsgi.py",
)
_IMAGE_ID = re.compile(r"sha256:[0-9a-f]{64}")
_LDD_PATH = re.compile(r"(?:=>\s*)?(/\S+)\s+\(0x")


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "trustproof" / "images"


def interpreter() -> Path:
    """Debian's interpreter (not a virtualenv's or pyenv's): ``/usr/bin/python3`` resolved."""
    path = Path(os.path.realpath("/usr/bin/python3"))
    if not path.is_file():
        raise SandboxError("no /usr/bin/python3: install Debian's python3-minimal")
    return path


def stdlib_dir(python: Path) -> Path:
    out = subprocess.run(
        [str(python), "-S", "-c", "import sysconfig; print(sysconfig.get_paths()['stdlib'])"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return Path(out.stdout.strip())


def shared_libraries(binaries: Iterable[Path]) -> set[Path]:
    """Every library ``ldd`` says the binaries load, and the dynamic loader."""
    found: set[Path] = set()
    for chunk in _chunks(sorted(binaries), 64):
        out = subprocess.run(
            ["ldd", *map(str, chunk)], capture_output=True, text=True, check=False, timeout=60
        )
        found |= {Path(m.group(1)) for m in _LDD_PATH.finditer(out.stdout)}
    return found


def _chunks(items: list[Path], size: int) -> Iterator[list[Path]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def stdlib_files(stdlib: Path) -> list[Path]:
    files = []
    for root, dirs, names in os.walk(stdlib):
        dirs[:] = sorted(d for d in dirs if d not in LEFT_OUT and not d.startswith("config-"))
        files += [Path(root) / n for n in sorted(names) if not n.endswith((".pyc", ".exe"))]
    return files


def contract_files() -> list[tuple[Path, str]]:
    package = Path(trustproof.__file__).parent
    return [(package / rel, f"srv/lib/trustproof/{rel}") for rel in CONTRACT_MODULES]


def app_files(app: Path) -> list[tuple[Path, str]]:
    return [
        (path, f"srv/app/{path.relative_to(app)}")
        for path in sorted(app.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    ]


def plan(app: Path) -> tuple[list[tuple[Path, str]], list[tuple[str, str]]]:
    """(host file -> path in the image) and (symlink in the image -> its target)."""
    python = interpreter()
    stdlib = stdlib_dir(python)
    std = stdlib_files(stdlib)
    libraries = shared_libraries([python, *(p for p in std if p.suffix == ".so")])
    files: list[tuple[Path, str]] = [(python, _in_image(python))]
    links: list[tuple[str, str]] = [("usr/bin/python3", python.name)]
    links += [  # merged /usr: /lib -> usr/lib, ... as on the host
        (name, os.readlink(f"/{name}"))
        for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
        if os.path.islink(f"/{name}")
    ]
    for library in sorted(libraries):
        real = Path(os.path.realpath(library))
        files.append((real, _in_image(real)))
        folder = Path(os.path.realpath(library.parent))
        if folder / library.name != real:  # a soname link, or the loader's /lib64 name
            links.append((_in_image(folder / library.name), os.path.relpath(real, folder)))
    files += [(path, _in_image(path)) for path in std]
    files += contract_files() + app_files(app)
    unique_links = {name: target for name, target in links if name != target}
    return sorted(set(files), key=lambda f: f[1]), sorted(unique_links.items())


def _in_image(path: Path) -> str:
    return str(path).lstrip("/")


def content_key(files: list[tuple[Path, str]], links: list[tuple[str, str]], cmd: str) -> str:
    digest = hashlib.sha256(f"{BUILDER_VERSION}\n{cmd}\n".encode())
    for source, name in files:
        stat = source.stat()
        digest.update(f"{name} {stat.st_size} {stat.st_mtime_ns}\n".encode())
        if name.startswith("srv/"):
            digest.update(source.read_bytes())
    for name, target in links:
        digest.update(f"{name} -> {target}\n".encode())
    return digest.hexdigest()[:16]


def write_tar(path: Path, files: list[tuple[Path, str]], links: list[tuple[str, str]]) -> None:
    temporary = path.with_suffix(".tmp")
    with tarfile.open(temporary, "w") as tar:
        made: set[str] = set()
        for name, target in links:
            if "/" not in name:  # a top-level link replaces a directory: before any file
                _link(tar, name, target)
                made.add(name)
        for folder in ("tmp", "etc", "srv"):
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if folder == "tmp" else 0o755
            tar.addfile(info)
        for source, name in files:
            tar.add(str(source), arcname=name, recursive=False)
        for name, target in links:
            if name not in made:
                _link(tar, name, target)
        passwd = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/nonexistent:/bin/false\n"
        info = tarfile.TarInfo("etc/passwd")
        info.size, info.mode = len(passwd), 0o644
        tar.addfile(info, io.BytesIO(passwd))
    os.replace(temporary, path)


def _link(tar: tarfile.TarFile, name: str, target: str) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    tar.addfile(info)


def build_image(client: Any, app: Path, repository: str, command: list[str] | None = None) -> str:
    """The image ``repository:<content key>`` (also tagged ``latest``), built or found."""
    if command is None:
        scripts = sorted(app.glob("*.py"))
        if len(scripts) != 1:
            raise SandboxError(f"{app} must hold exactly one .py file, or pass a command")
        command = ["python3", f"/srv/app/{scripts[0].name}"]
    files, links = plan(app)
    key = content_key(files, links, json.dumps(command))
    reference = f"{repository}:{key}"
    if not _has_image(client, reference):
        folder = cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
        tar = folder / f"python-{key}.tar"
        if not tar.exists():
            write_tar(tar, files, links)
        answer = client.api.import_image(
            src=str(tar),
            repository=repository,
            tag=key,
            changes=[
                f"CMD {json.dumps(command)}",
                "ENV PYTHONPATH=/srv/lib",
                "ENV PYTHONDONTWRITEBYTECODE=1",
                "ENV PATH=/usr/bin:/bin",
                "WORKDIR /srv/app",
            ],
        )
        # Podman's compatible API tags an import `latest` whatever tag it is given: tag by id
        found = _IMAGE_ID.findall(str(answer))
        if not found:
            raise SandboxError(f"the engine did not import {tar}: {str(answer)[:300]}")
        client.images.get(found[-1]).tag(repository, key)
    client.images.get(reference).tag(repository, "latest")
    return reference


def _has_image(client: Any, reference: str) -> bool:
    import docker.errors  # noqa: PLC0415 (see sandbox.engine)

    try:
        client.images.get(reference)
    except docker.errors.ImageNotFound:
        return False
    return True


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m trustproof.sandbox.pyimage APP_DIR REPOSITORY", file=sys.stderr)
        return 2
    import tempfile  # noqa: PLC0415

    from trustproof.sandbox.backend import PidRegistry  # noqa: PLC0415
    from trustproof.sandbox.engine import connect  # noqa: PLC0415
    from trustproof.sandbox.rundir import RunDir  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="trustproof-image-") as folder:
        run = RunDir.create(Path(folder))
        engine = connect(run, PidRegistry(run.pids))  # may start a Podman service: stopped below
        try:
            print(build_image(engine.client, Path(argv[0]), argv[1]))
        finally:
            engine.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
