"""What the sandbox's PostgreSQL is told: ``postgresql.conf``, ``pg_hba.conf`` and client DSNs.

Pure functions of their inputs (no files, no processes), so each rule can be read and unit-tested
here. The access rules are the point of the whole datastore: TLS with a client certificate from
the sandbox CA over loopback TCP, the certificate's CN naming the role, and nothing else — no
plaintext, no passwords, no trust over TCP.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from psycopg.conninfo import make_conninfo

from trustproof.datastores.errors import DatastoreError

ADMIN_ROLE = "trustproof:admin"
"""The superuser the controller provisions with, over the private unix socket only.

The ``:`` keeps it out of reach of certificates: no SPIFFE path segment, hence no CN the sandbox CA
issues, can contain one, so no SVID can authenticate as this role over TCP even though the
``hostssl`` line admits ``all`` users (and no workload name can collide with it).
"""

LOOPBACK_CLIENTS = "127.0.0.1/32"


@dataclass(frozen=True)
class ServerConfig:
    """Everything ``postgresql.conf`` and ``pg_hba.conf`` depend on, for one run."""

    host: str
    port: int
    database: str
    socket_dir: Path
    hba_file: Path
    ident_file: Path
    cert_file: Path
    key_file: Path
    ca_file: Path
    crl_file: Path
    client_network: str = LOOPBACK_CLIENTS


def quote_setting(value: str | Path) -> str:
    """A ``postgresql.conf`` string literal: single quotes, with ``'`` and ``\\`` escaped."""
    text = str(value)
    if any(c in text for c in "\r\n\0"):
        raise DatastoreError(
            f"cannot write {text!r} into postgresql.conf: it contains a line break or NUL",
            "use a run directory whose path has no control characters",
        )
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def quote_hba(token: str) -> str:
    """A ``pg_hba.conf`` name in double quotes, so it matches literally (``"all"`` is a name,
    ``all`` a keyword)."""
    if not token or any(c.isspace() or c in '"#,' for c in token):
        raise DatastoreError(
            f"cannot write the name {token!r} into pg_hba.conf",
            "database and role names are lowercase letters, digits, '.', '-' and '_'",
        )
    return f'"{token}"'


def render_postgresql_conf(config: ServerConfig) -> str:
    """The whole ``postgresql.conf`` (``postgres -c config_file=...`` reads only this one)."""
    q = quote_setting
    return f"""\
# postgresql.conf for one trustproof sandbox run: rendered per run, thrown away at teardown.

# Network: loopback TCP (TLS only, see pg_hba.conf) and a private unix socket for the controller.
listen_addresses = {q(config.host)}
port = {config.port}
unix_socket_directories = {q(config.socket_dir)}
unix_socket_permissions = 0700
hba_file = {q(config.hba_file)}
ident_file = {q(config.ident_file)}

# TLS: the server certificate comes from the sandbox CA (IP SAN = listen address); client
# certificates are verified against the CA bundle and its CRLs. Reloaded on SIGHUP.
ssl = on
ssl_cert_file = {q(config.cert_file)}
ssl_key_file = {q(config.key_file)}
ssl_ca_file = {q(config.ca_file)}
ssl_crl_file = {q(config.crl_file)}
ssl_min_protocol_version = 'TLSv1.2'
ssl_prefer_server_ciphers = on
password_encryption = 'scram-sha-256'

# A throwaway sandbox: nothing in it must survive a crash, so durability is switched off; it would
# cost start-up and write time and buy nothing. Never copy these lines to a real server.
fsync = off
synchronous_commit = off
full_page_writes = off
autovacuum = off
shared_buffers = '16MB'
huge_pages = off
max_connections = 100

# Logging to stderr (the run's log file): every connection, with who and how.
log_connections = on
log_line_prefix = '%m [%p] %q%u@%d '
lc_messages = 'C'
log_timezone = 'UTC'
timezone = 'UTC'
"""


def render_pg_hba(database: str, client_network: str = LOOPBACK_CLIENTS) -> str:
    """The whole ``pg_hba.conf``: the admin over the socket, workloads by certificate, nothing
    else. The first matching line decides; a connection no line matches is refused."""
    rows = [
        ("local", "all", quote_hba(ADMIN_ROLE), "", "trust"),
        ("hostssl", quote_hba(database), "all", client_network, "cert"),
        ("hostnossl", "all", "all", "0.0.0.0/0", "reject"),
        ("hostnossl", "all", "all", "::/0", "reject"),
    ]
    table = [f"{t:<10} {d:<12} {u:<19} {a:<16} {m}".rstrip() for t, d, u, a, m in rows]
    return f"""\
# pg_hba.conf for one trustproof sandbox run. First match wins; no line accepts a password.
# TYPE     DATABASE     USER                ADDRESS          METHOD
#
# The controller provisions as the admin over the unix socket. `trust` is safe there because the
# socket lives in a 0700 directory only the server's account (and root) can enter; `peer` would
# add nothing but a pg_ident map from whatever OS user runs the controller to the admin role.
{table[0]}
# Workloads: TLS plus a client certificate from the sandbox CA whose CN is the role name
# (`cert` implies clientcert=verify-full). Roles hold exactly the spec's grants.
{table[1]}
# Plaintext TCP is refused with a message that says so, not just "no pg_hba.conf entry".
{table[2]}
{table[3]}
"""


def client_dsn(
    *,
    host: str,
    port: int,
    database: str,
    user: str,
    cert: Path,
    key: Path,
    bundle: Path,
) -> str:
    """The libpq keyword DSN a workload connects with: certificate auth, server verified by IP
    SAN against the sandbox bundle (``verify-full``). It never carries a password."""
    return make_conninfo(
        host=host,
        port=str(port),
        dbname=database,
        user=user,
        sslmode="verify-full",
        sslrootcert=str(bundle),
        sslcert=str(cert),
        sslkey=str(key),
    )


def admin_dsn(socket_dir: Path, port: int, database: str = "postgres") -> str:
    """The controller's DSN: the admin over the private unix socket (no password, no TLS)."""
    return make_conninfo(host=str(socket_dir), port=str(port), dbname=database, user=ADMIN_ROLE)
