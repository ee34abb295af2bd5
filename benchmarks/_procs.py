"""Child processes for the gateway benchmark: started in their own process groups, read for a
ready line with a deadline, and always stopped (SIGTERM to the group, then SIGKILL).

CPU accounting from /proc (per process group and for the whole machine), and the nginx
reference: finding (or, as root, installing) nginx and writing a configuration
whose pid, temporary and log paths all live in the run's temporary directory.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import IO, Any

from trustproof.parentdeath import die_with_parent

STOP_GRACE = 5.0


class Children:
    """Every process the benchmark starts; `stop_all()` ends them, whatever happened."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.running: list[tuple[str, subprocess.Popen[str]]] = []

    def start(self, name: str, command: list[str], *, stdout: bool = True) -> subprocess.Popen[str]:
        log: IO[str] = (self.logs / f"{name}.log").open("a")
        try:
            process = subprocess.Popen(
                die_with_parent(command),  # SIGKILL if this benchmark dies (a timeout, kill -9)
                stdout=subprocess.PIPE if stdout else subprocess.DEVNULL,
                stderr=log,
                stdin=subprocess.DEVNULL,
                text=True,
                start_new_session=True,  # its own process group, so children go with it
            )
        finally:
            log.close()
        self.running.append((name, process))
        return process

    def log_tail(self, name: str, lines: int = 15) -> str:
        path = self.logs / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def ready_line(self, name: str, process: subprocess.Popen[str], timeout: float) -> Any:
        """The JSON object the child prints when it is ready."""
        assert process.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            readable, _, _ = select.select([process.stdout], [], [], 0.2)
            if readable:
                line = process.stdout.readline()
                if line:
                    return json.loads(line)
            if process.poll() is not None:
                break
        raise RuntimeError(
            f"{name} did not become ready within {timeout:.0f} s "
            f"(exit code {process.poll()}); its log ends with:\n{self.log_tail(name)}"
        )

    def collect(self, name: str, process: subprocess.Popen[str], timeout: float) -> Any:
        """Wait for a client process to finish and return the JSON it printed."""
        try:
            out, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop(process)
            raise RuntimeError(f"{name} did not finish within {timeout:.0f} s") from None
        if process.returncode != 0 or not out.strip():
            raise RuntimeError(
                f"{name} failed (exit code {process.returncode}); its log ends with:\n"
                + self.log_tail(name)
            )
        return json.loads(out)

    def stop_all(self) -> None:
        for _, process in reversed(self.running):
            stop(process)
        self.running.clear()


def stop(process: subprocess.Popen[str], sig: int = signal.SIGTERM) -> None:
    """End `process` and its process group: `sig`, then SIGKILL after a grace period."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, sig)
            process.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(STOP_GRACE)
        except ProcessLookupError:
            pass
    if process.stdout is not None:
        process.stdout.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of every live process in process group `pgid` (from /proc)."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after the command: state ppid pgrp ... utime stime
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def machine_cpu_seconds() -> tuple[float, float]:
    """Busy CPU seconds of the whole machine so far (all cores, from /proc/stat), and the part
    of it spent in interrupts: mostly the kernel's loopback TCP, which no process is charged."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    tick = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq + steal) / tick, (irq + softirq) / tick


# -- nginx ----------------------------------------------------------------------------------------


def find_nginx(*, install: bool) -> tuple[str | None, str]:
    """The nginx binary, installing it with apt-get when missing and running as root; or None
    and why not."""
    path = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
    )
    if path:
        return path, ""
    if not install:
        return None, "nginx is not installed (--no-install)"
    if os.geteuid() != 0:
        return None, "nginx is not installed and this is not root: apt-get install -y nginx"
    print("nginx not found; installing it with apt-get (as root) ...", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for step in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "nginx"]):
        done = subprocess.run(
            step, check=False, env=env, capture_output=True, text=True, timeout=600
        )
        if done.returncode != 0:
            return None, f"{' '.join(step)} failed: {done.stderr.strip()[-300:]}"
    path = shutil.which("nginx") or "/usr/sbin/nginx"
    return (path, "") if Path(path).exists() else (None, "nginx still missing after install")


def nginx_config(prefix: Path, material: Path, port: int, upstream_port: int, workers: int) -> Path:
    """An mTLS reverse proxy: the sandbox CA as the client CA (verification required), proxying
    to the upstream over a keep-alive pool; everything it writes stays under `prefix`."""
    for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    config = prefix / "nginx.conf"
    config.write_text(
        f"""daemon off;
master_process on;
worker_processes {workers};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    upstream orders {{
        server 127.0.0.1:{upstream_port};
        keepalive 64;
        keepalive_requests 1000000;
    }}
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_certificate {material}/cert.pem;
        ssl_certificate_key {material}/key.pem;
        ssl_client_certificate {material}/bundle.pem;
        ssl_verify_client on;
        ssl_verify_depth 3;
        keepalive_requests 1000000;
        keepalive_timeout 60s;
        location / {{
            proxy_pass http://orders;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Client-Verify $ssl_client_verify;
            proxy_set_header X-Client-Cert-Serial $ssl_client_serial;
        }}
    }}
}}
"""
    )
    return config
