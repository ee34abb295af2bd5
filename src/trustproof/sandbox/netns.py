"""Named network namespaces (``/run/netns/<name>``, as ``ip netns`` makes them) and sockets made
inside them.

    ns = NetNamespace.create("tp-1a2b3c4d-orders")   # `ip netns add`; lo is brought up
    sock = ns.socket(socket.AF_INET, socket.SOCK_STREAM)   # a socket that lives in `ns`
    ns.close(); ns.delete()

A socket belongs to the network namespace of the thread that created it, for its whole life; so
the controller (which stays in the host's namespace) reaches into a namespace only by asking that
namespace's worker thread — a thread that entered it once with ``setns(2)`` — to create sockets.
The main thread never switches. Python 3.11 has no ``os.setns``: libc's is called through ctypes.

Every name this run creates is written to the run's ledger (``<run>/netns``) *before* it is
created, so `remove_recorded` (the reaper and `trustproof down`) deletes it — and its
``/etc/netns/<name>`` directory — also after the controller was SIGKILLed. Only names of the
sandbox's own form (``tp-<8 hex>-<name>``) are ever deleted from a ledger.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import ctypes
import functools
import os
import queue
import re
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from trustproof.errors import SandboxError
from trustproof.sandbox.choice import system_tool

NETNS_RUN = Path("/run/netns")
NETNS_ETC = Path("/etc/netns")
CLONE_NEWNET = 0x40000000
LEDGER = "netns"
NAME_FORM = re.compile(r"^tp-[0-9a-f]{8}-[a-z0-9][a-z0-9._-]{0,200}$")
IP_TIMEOUT_SECONDS = 10.0
STOCK = 16  # IPv4 stream sockets kept made in each namespace, for `connect`

T = TypeVar("T")
Socket = socket.socket  # (inside the class, `socket` is the method)
_Job = tuple[Callable[[], Any], concurrent.futures.Future[Any]]


def ip_tool() -> str | None:
    """The path of iproute2's ``ip``, or None."""
    return system_tool("ip")


def run_ip(
    args: list[str],
    *,
    stdin: str | None = None,
    what: str,
    tool_name: str = "",
    hint: str = "",
    timeout: float = IP_TIMEOUT_SECONDS,
) -> str:
    """Run ``ip ARGS`` (stdin for ``-batch -``; ``netns exec NS TOOL …`` for a tool inside a
    namespace); its output, or a `SandboxError` saying `what` failed with the tool's own words
    (`tool_name`: how to name it, default the ``ip`` command line; `hint`: what to do)."""
    tool = ip_tool()
    if tool is None:
        raise SandboxError(f"{what}: iproute2's `ip` is not installed", "apt-get install iproute2")
    try:
        done = subprocess.run(
            [tool, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SandboxError(f"{what}: {exc}") from None
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        named = tool_name or f"`ip {' '.join(args[:4])}`"
        raise SandboxError(
            f"{what}: {named} failed: {'; '.join(said[-3:]) or 'no output'}",
            hint
            or "the isolated backend needs root and a kernel with network namespaces, veth and "
            "bridge support; `--backend local` runs without isolation",
        )
    return done.stdout


def _libc_setns() -> Callable[[int, int], int]:
    libc = ctypes.CDLL(None, use_errno=True)
    setns: Callable[[int, int], int] = libc.setns
    return setns


class _Worker(threading.Thread):
    """A thread that entered one network namespace and runs small jobs there, one at a time."""

    def __init__(self, name: str, path: Path) -> None:
        super().__init__(name=f"netns:{name}", daemon=True)
        self.path = path
        self.jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self.entered: concurrent.futures.Future[None] = concurrent.futures.Future()

    def run(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if _libc_setns()(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns({self.path}): {os.strerror(err)}")
            finally:
                os.close(fd)
        except OSError as exc:
            self.entered.set_exception(exc)
            return
        self.entered.set_result(None)
        while (job := self.jobs.get()) is not None:
            func, future = job
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(func())
                except BaseException as exc:  # handed to the caller
                    future.set_exception(exc)


class NetNamespace:
    """One named network namespace and the worker thread that makes sockets in it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._worker: _Worker | None = None
        self._lock = threading.Lock()
        self._stock: collections.deque[Socket] = collections.deque()
        self._refilling = False
        self._closed = False

    def __repr__(self) -> str:
        return f"NetNamespace({self.name!r})"

    @property
    def path(self) -> Path:
        return NETNS_RUN / self.name

    @property
    def etc(self) -> Path:
        """``/etc/netns/<name>``: what ``ip netns exec`` bind-mounts over /etc (resolv.conf)."""
        return NETNS_ETC / self.name

    @classmethod
    def create(cls, name: str, *, lo: bool = True) -> NetNamespace:
        """``ip netns add NAME`` with its loopback up (record it in the ledger first); `lo`
        False leaves that to the caller's own ``ip -batch``."""
        if not NAME_FORM.match(name):
            raise SandboxError(f"bad network namespace name {name!r}")
        run_ip(["netns", "add", name], what=f"cannot create network namespace {name}")
        ns = cls(name)
        if lo:
            run_ip(["-n", name, "link", "set", "lo", "up"], what=f"cannot bring up lo in {name}")
        return ns

    def exists(self) -> bool:
        return self.path.exists()

    def inode(self) -> int:
        """The namespace's inode (what ``/proc/<pid>/ns/net`` of a process inside points to)."""
        return os.stat(self.path).st_ino

    def write_etc(self, filename: str, text: str) -> Path:
        """Write ``/etc/netns/<name>/<filename>`` (world-readable: e.g. resolv.conf)."""
        self.etc.mkdir(mode=0o755, parents=True, exist_ok=True)
        path = self.etc / filename
        path.write_text(text, encoding="utf-8")
        os.chmod(path, 0o644)
        return path

    def call(self, func: Callable[[], T]) -> T:
        """Run `func` on this namespace's worker thread (blocking) and return what it returned."""
        return self.submit(func).result(IP_TIMEOUT_SECONDS)

    def submit(self, func: Callable[[], T]) -> concurrent.futures.Future[T]:
        """Queue `func` for this namespace's worker thread; its future. `OSError` once closed (a
        connection attempt during teardown fails like any refused one)."""
        if self._closed:
            raise ConnectionRefusedError(f"network namespace {self.name} is closed")
        with self._lock:
            if self._worker is None:
                worker = _Worker(self.name, self.path)
                worker.start()
                try:
                    worker.entered.result(IP_TIMEOUT_SECONDS)
                except OSError as exc:  # (a SandboxError is no OSError: never read as refused)
                    raise SandboxError(
                        f"cannot enter network namespace {self.name}: {exc.strerror or exc}",
                        "the isolated backend needs root (CAP_SYS_ADMIN)",
                    ) from None
                self._worker = worker
            future: concurrent.futures.Future[T] = concurrent.futures.Future()
            self._worker.jobs.put((func, future))
        return future

    def socket(self, family: int, type: int, proto: int = 0) -> Socket:
        """A new socket in this namespace (it stays there whichever thread uses it)."""
        return self.call(lambda: socket.socket(family, type, proto))

    async def connect(self, host: str, port: int) -> Socket:
        """A non-blocking TCP socket made in this namespace and connected to `host:port`
        (an IPv4 or IPv6 address literal); `OSError` when the connection fails.

        The event loop never waits for the worker thread when it can help it: IPv4 stream
        sockets come from a small stock the worker keeps filled (a busy machine can take
        milliseconds to schedule the worker; every gateway shares the loop)."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = self._from_stock() if family == socket.AF_INET else None
        if sock is None:
            make = functools.partial(socket.socket, family, socket.SOCK_STREAM)
            sock = await asyncio.wrap_future(self.submit(make))
        try:
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, (host, port))
        except BaseException:
            sock.close()
            raise
        return sock

    def _from_stock(self) -> Socket | None:
        try:
            sock = self._stock.popleft()
        except IndexError:
            sock = None
        if not self._refilling and len(self._stock) < STOCK // 2:
            self._refilling = True
            self.submit(self._refill)
        return sock

    def _refill(self) -> None:
        """(On the worker thread.) Fill the stock of IPv4 stream sockets made in here."""
        try:
            while len(self._stock) < STOCK and not self._closed:
                self._stock.append(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        finally:
            self._refilling = False

    def close(self) -> None:
        """End the worker thread (sockets already made stay usable; the stock is closed)."""
        self._closed = True
        while self._stock:
            self._stock.popleft().close()
        with self._lock:
            worker, self._worker = self._worker, None
        if worker is not None:
            worker.jobs.put(None)
            worker.join(IP_TIMEOUT_SECONDS)
        while self._stock:  # anything a last refill added
            self._stock.popleft().close()

    def delete(self) -> None:
        """Close, then ``ip netns del`` and remove ``/etc/netns/<name>``; quiet when gone."""
        self.close()
        delete_namespace(self.name)


def delete_namespace(name: str) -> bool:
    """Delete the namespace `name` (when it exists) and its ``/etc/netns`` directory; whether
    there was anything to delete. Never raises for a namespace already gone."""
    found = False
    if (NETNS_RUN / name).exists():
        found = True
        with contextlib.suppress(SandboxError):
            run_ip(["netns", "del", name], what=f"cannot delete network namespace {name}")
    etc = NETNS_ETC / name
    if etc.is_dir() and not etc.is_symlink():
        found = True
        shutil.rmtree(etc, ignore_errors=True)
    return found


class Ledger:
    """``<run>/netns``: one namespace name per line, appended before the namespace exists."""

    def __init__(self, run_path: Path) -> None:
        self.path = run_path / LEDGER

    def add(self, name: str) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as handle:
            handle.write(f"{name}\n")
            handle.flush()
            os.fsync(handle.fileno())

    def names(self) -> list[str]:
        """The recorded names of the sandbox's own form (anything else is ignored)."""
        try:
            lines = self.path.read_text(encoding="utf-8").split()
        except FileNotFoundError:
            return []
        return list(dict.fromkeys(line for line in lines if NAME_FORM.match(line)))

    def clear(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def remove_recorded(run_path: Path) -> list[str]:
    """Delete every namespace (and its ``/etc/netns`` directory) the run in `run_path` recorded;
    the names that still existed. Their veths, bridge, addresses and nftables rules go with
    them: nothing of the sandbox's network lives anywhere else."""
    ledger = Ledger(run_path)
    names = ledger.names()
    removed = [name for name in reversed(names) if delete_namespace(name)]
    if not any((NETNS_RUN / name).exists() or (NETNS_ETC / name).exists() for name in names):
        ledger.clear()  # else kept: the next `down` tries again
    return removed
