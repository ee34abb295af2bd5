"""One PostgreSQL server for one datastore of one run: started from the cached template, provisioned
from the spec, reachable by workloads only with a certificate over loopback TLS.

    server = PostgresServer(spec, "shopdb", ca, run_dir)
    timings = server.start()                  # or: await server.start_async()
    dsn = server.connection_settings("orders", cert=..., key=..., bundle=...)
    server.rotate_server_certificate()        # new SVID on disk, reloaded, confirmed
    ca.revoke(svid); server.refresh_crl()     # new CRL on disk, reloaded, confirmed
    server.stop()                             # or: await server.stop_async(); idempotent

The API is blocking, with `start_async`/`stop_async` running it in a worker thread: starting is a
straight sequence of file copies, one child process and a handful of queries, which reads best as
one plain function and leaves the controller's event loop free while it runs. A lock makes `stop`
wait for a `start` in flight (a cancelled `start_async` keeps running in its thread), so nothing
outlives `stop`.

`postgres` runs in the foreground as our child in its own session (process group), its output going
to the log file; `stop` asks for a fast shutdown (SIGINT) and SIGKILLs the group after
`stop_timeout`. See `pgaccount` for who it runs as, `pgtemplate` for the cached `initdb`,
`pgconfig` for its configuration and access rules, `pgprovision` for the database and roles.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO, Self

from trustproof.data.pipeline import ScrubbedTable
from trustproof.datastores import pgprocess, pgprovision
from trustproof.datastores.errors import DatastoreError
from trustproof.datastores.pgaccount import ServerAccount, scratch_root
from trustproof.datastores.pgbinaries import PgBinaries, find_binaries
from trustproof.datastores.pgconfig import (
    ServerConfig,
    admin_dsn,
    client_dsn,
)
from trustproof.datastores.pgteam import TeamTemplate, configuration
from trustproof.datastores.pgtemplate import copy_template, ensure_template
from trustproof.identity import CertificateAuthority, Svid
from trustproof.spec.model import Spec


@dataclass(frozen=True)
class StartTimings:
    """Seconds spent in each step of `start`: `template` creating the cached template (0.0 when
    the cache had it), `copy` copying it and writing the TLS and config files, `ready` from
    spawning `postgres` to its accepting connections, `provision` the database, schema, roles,
    grants and seed."""

    template: float
    template_created: bool
    copy: float
    ready: float
    provision: float

    @property
    def total(self) -> float:
        return self.template + self.copy + self.ready + self.provision


@dataclass(frozen=True)
class ServerFiles:
    """Where one server's files live. `home` is owned by the server's account."""

    home: Path
    log: Path

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def socket_dir(self) -> Path:
        return self.home / "socket"

    @property
    def tls_dir(self) -> Path:
        return self.home / "tls"

    @property
    def conf(self) -> Path:
        return self.home / "postgresql.conf"

    @property
    def key_file(self) -> Path:
        """The server's private key (0600, the server account's): removed by `stop`."""
        return self.tls_dir / "server.key"

    def config(self, host: str, port: int, database: str) -> ServerConfig:
        tls = self.tls_dir
        return ServerConfig(
            host=host,
            port=port,
            database=database,
            socket_dir=self.socket_dir,
            hba_file=self.home / "pg_hba.conf",
            ident_file=self.home / "pg_ident.conf",
            cert_file=tls / "server.crt",
            key_file=self.key_file,
            ca_file=tls / "ca.crt",
            crl_file=tls / "crl.pem",
        )


class PostgresServer:
    """The PostgreSQL server of datastore `name` in `spec`; its log at `log_path` (default
    ``run_dir/postgres.log``).

    The server's own files (data directory, socket, TLS key, config) live in a private home
    directory owned by the server's account, created under `home_root` (default: ``/dev/shm`` when
    it has room, else the temporary directory; see `pgaccount.scratch_root`) and deleted by `stop`.
    They cannot live in the run directory: it is the controller's (0700), closed to ``postgres``
    when the controller is root. `certificate_ttl` defaults to the spec's certificate lifetime;
    `renew_if_due` re-issues the server certificate at half-life. One start per object.
    """

    def __init__(
        self,
        spec: Spec,
        name: str,
        ca: CertificateAuthority,
        run_dir: Path,
        *,
        certificate_ttl: timedelta | None = None,
        log_path: Path | None = None,
        binaries: PgBinaries | None = None,
        cache_dir: Path | None = None,
        home_root: Path | None = None,
        ready_timeout: float = 15.0,
        stop_timeout: float = 5.0,
        port: int | None = None,
        samples: Sequence[ScrubbedTable] = (),
    ) -> None:
        if name not in spec.datastores:
            raise DatastoreError(
                f"the spec has no datastore {name!r} (it has: {', '.join(spec.datastores)})",
                "datastore names are the keys under `datastores:`",
            )
        store = spec.datastores[name]
        self.name = name
        self.host = str(store.host)
        self.database = str(store.database or name)
        self.ca = ca
        self.run_dir = run_dir
        self.certificate_ttl = certificate_ttl or timedelta(seconds=spec.ttl.certificate.seconds)
        self.log_path = log_path or run_dir / "postgres.log"
        self.binaries = binaries
        self.cache_dir = cache_dir
        self.home_root = home_root
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.plan = pgprovision.Provisioning(
            name=name,
            database=self.database,
            roles={role: dict(tables) for role, tables in store.roles.items()},
            schema=pgprovision.SqlFile(store.schema, spec.resolve(store.schema))
            if store.schema
            else None,
            seed=pgprovision.SqlFile(store.seed, spec.resolve(store.seed)) if store.seed else None,
            samples=tuple(samples),
        )
        self.hba_template = TeamTemplate(store.hba, spec.resolve(store.hba)) if store.hba else None
        self.conf_template = (
            TeamTemplate(store.conf, spec.resolve(store.conf)) if store.conf else None
        )
        self._wanted_port = store.port
        self._given_port = port  # from the sandbox's `ports:` range (None: the kernel's choice)
        self.port: int | None = None
        self.timings: StartTimings | None = None
        self.server_svid: Svid | None = None
        self._lock = threading.RLock()
        self._process: subprocess.Popen[bytes] | None = None
        self._keeper: ThreadPoolExecutor | None = None  # the thread `start_async` spawns from
        self._log: IO[bytes] | None = None
        self._files: ServerFiles | None = None
        self._account: ServerAccount | None = None

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.pid else "stopped"
        return f"PostgresServer({self.name!r}, {self.host}:{self.port}, {state})"

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> StartTimings:
        """Copy the template, write TLS material and config, start `postgres`, wait until it
        accepts connections, provision it. On any failure everything started is stopped."""
        with self._lock:
            if self._files is not None:
                raise DatastoreError(f"the PostgreSQL server {self.name!r} was already started")
            try:
                return self._start()
            except BaseException as exc:
                self.stop()
                if isinstance(exc, OSError):
                    raise DatastoreError(
                        f"could not start PostgreSQL for {self.name!r}: {exc}",
                        "is the run directory writable, on a local disk?",
                    ) from exc
                raise

    def _start(self) -> StartTimings:
        binaries = self.binaries or find_binaries()
        account = self._account = ServerAccount.for_this_process()
        template = ensure_template(binaries, account, self.cache_dir)
        started = time.perf_counter()
        self.run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        root = self.home_root or scratch_root()
        home = account.scratch_dir(f"trustproof-pg-{self.name}-", root)
        files = self._files = ServerFiles(home, self.log_path)
        copy_template(template.path, files.data, account)
        for directory in (files.socket_dir, files.tls_dir):
            account.private_dir(directory)
        self.port = self._wanted_port or self._given_port or pgprocess.free_port(self.host)
        config = files.config(self.host, self.port, self.database)
        self.server_svid = self._issue_server_svid()
        self._install(config, svid=self.server_svid, trust=True)
        roles = list(self.plan.roles)
        conf, hba = configuration(config, roles, self.conf_template, self.hba_template)
        account.write_file(files.conf, conf.encode(), 0o600)
        account.write_file(config.hba_file, hba.encode(), 0o600)
        account.write_file(config.ident_file, b"", 0o600)
        copied = time.perf_counter()
        fd = os.open(files.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
        self._log = os.fdopen(fd, "ab")
        self._process = pgprocess.spawn(binaries, account, files.data, files.conf, self._log)
        hint = (
            f"is port {self.port} free? Remove `port:` from datastore {self.name!r} to let the "
            "sandbox choose one"
            if self._wanted_port
            else f"the whole log is {files.log}"
        )
        pgprocess.wait_ready(self._process, files.data, files.log, self.ready_timeout, hint)
        ready = time.perf_counter()
        pgprovision.provision(self.plan, files.socket_dir, self.port)
        self.timings = StartTimings(
            template=template.seconds,
            template_created=template.created,
            copy=copied - started,
            ready=ready - copied,
            provision=time.perf_counter() - ready,
        )
        return self.timings

    def stop(self) -> None:
        """Fast shutdown (SIGINT), SIGKILL for the whole group after `stop_timeout`; then the key
        file and the whole home directory are removed. Safe to call any number of times."""
        with self._lock:
            process, self._process = self._process, None
            if process is not None:
                pgprocess.terminate(process, self.stop_timeout)
            if self._log is not None:
                self._log.close()
                self._log = None
            files = self._files
            if files is not None:
                with contextlib.suppress(OSError):
                    files.key_file.unlink()
                shutil.rmtree(files.home, ignore_errors=True)
            keeper, self._keeper = self._keeper, None
            if keeper is not None:  # the postmaster is gone: its spawning thread may end
                keeper.shutdown(wait=False)

    async def start_async(self) -> StartTimings:
        """`start` on a thread of this server's own that lives until `stop`: the postmaster's
        parent-death signal follows the thread that spawned it (`trustproof.parentdeath`), and a
        shared executor's thread can end with the event loop that started the server."""
        keeper = self._keeper = self._keeper or ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"trustproof-pg-{self.name}"
        )
        return await asyncio.get_running_loop().run_in_executor(keeper, self.start)

    async def stop_async(self) -> None:
        await asyncio.to_thread(self.stop)

    @property
    def home(self) -> Path | None:
        """The server's private directory (data, socket, TLS files), for state and clean-up."""
        return self._files.home if self._files is not None else None

    @property
    def pid(self) -> int | None:
        """The postmaster's pid, which is also its process group id; None when not running."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    # -- what clients use ------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``postgresql://host:port/database``: an address for reports, without credentials."""
        return f"postgresql://{self.host}:{self.port}/{self.database}"

    def connection_settings(self, workload: str, *, cert: Path, key: Path, bundle: Path) -> str:
        """The libpq DSN `workload` connects with: its certificate and key files, the bundle to
        verify the server with (verify-full, by IP SAN); never a password."""
        return client_dsn(
            host=self.host,
            port=self._running_port(),
            database=self.database,
            user=workload,
            cert=cert,
            key=key,
            bundle=bundle,
        )

    def admin_settings(self, database: str | None = None) -> str:
        """The controller's DSN: the admin over the private unix socket (no TCP, no password)."""
        files = self._running_files()
        return admin_dsn(files.socket_dir, self._running_port(), database or self.database)

    # -- rotation and revocation -----------------------------------------------------------

    def rotate_server_certificate(self, svid: Svid | None = None) -> Svid:
        """Install `svid` (default: a fresh one from the CA) as the server certificate and reload;
        returns once new connections are served with it. If PostgreSQL refuses it (say the key
        does not match), the previous files are put back and `DatastoreError` says why."""
        with self._lock:
            svid = svid or self._issue_server_svid()
            config = self._config()
            self._install(config, svid=svid)
            try:
                self._reload("the new server certificate")
            except DatastoreError:
                if self.server_svid is not None:  # put back the files of what is still served
                    self._install(config, svid=self.server_svid)
                raise
            self.server_svid = svid
            return svid

    def renew_if_due(self, fraction: float = 0.5) -> bool:
        """Rotate the server certificate once `fraction` of its lifetime has passed."""
        current = self.server_svid
        if current is None:
            return False
        due = current.not_before.timestamp() + fraction * current.lifetime
        if self.ca.clock.now().timestamp() < due:
            return False
        self.rotate_server_certificate()
        return True

    def refresh_crl(self) -> None:
        """Rewrite the CA bundle and its CRLs from the CA, then reload. Both go together: with
        CRL checking on, every CA in a client's chain needs a CRL (see `identity.ca`)."""
        with self._lock:
            self._install(self._config(), trust=True)
            self._reload("the new CA bundle and CRL")

    # -- internals -------------------------------------------------------------------------

    def _issue_server_svid(self) -> Svid:
        return self.ca.issue(self.name, self.certificate_ttl, ips=[self.host], dns=["localhost"])

    def _install(
        self, config: ServerConfig, *, svid: Svid | None = None, trust: bool = False
    ) -> None:
        """Write the trust files (bundle, CRLs) and/or the server's certificate and key."""
        write = self._account_of().write_file
        if trust:
            write(config.ca_file, self.ca.bundle_pem(), 0o644)
            write(config.crl_file, self.ca.crl_pem(), 0o644)
        if svid is not None:
            write(config.cert_file, svid.cert_chain_pem(), 0o644)
            write(config.key_file, svid.key_pem(), 0o600)  # PostgreSQL insists on 0600

    def _reload(self, what: str) -> None:
        files = self._running_files()
        dsn = admin_dsn(files.socket_dir, self._running_port())
        pgprocess.reload_and_confirm(dsn, files.log, self.ready_timeout, what)

    def _config(self) -> ServerConfig:
        return self._running_files().config(self.host, self._running_port(), self.database)

    def _account_of(self) -> ServerAccount:
        if self._account is None:
            raise DatastoreError(f"the PostgreSQL server {self.name!r} has not been started")
        return self._account

    def _running_files(self) -> ServerFiles:
        if self._files is None or self._process is None:
            raise DatastoreError(f"the PostgreSQL server {self.name!r} is not running")
        return self._files

    def _running_port(self) -> int:
        if self.port is None:
            raise DatastoreError(f"the PostgreSQL server {self.name!r} has not been started")
        return self.port
