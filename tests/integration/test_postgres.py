"""The shop's PostgreSQL, for real: TLS on loopback, certificate auth, the spec's grants, no more.

Every passing connection has a failing twin that asserts PostgreSQL's specific refusal. One server
serves the module (tests that revoke or rotate use their own certificates and put a good server
certificate back); tests about starting and stopping start their own.
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import os
import re
import socket
import ssl
import struct
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from cryptography import x509
from psycopg import errors
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from trustproof.clock import SystemClock
from trustproof.datastores import ADMIN_ROLE, DatastoreError, PostgresServer, find_binaries
from trustproof.datastores.pgaccount import ServerAccount
from trustproof.datastores.pgtemplate import ensure_template, is_complete
from trustproof.identity import CertificateAuthority, Svid, SvidFiles, write_svid_files
from trustproof.spec import Spec, load_spec
from trustproof.spec.values import RelPath

pytestmark = pytest.mark.integration

SHOP = Path(__file__).resolve().parents[2] / "examples" / "shop" / "trustproof.yaml"
TTL = timedelta(minutes=5)
TABLES = ("products", "orders", "order_items", "payments")
PRIVILEGES = ("select", "insert", "update", "delete", "truncate", "references", "trigger")
SSL_REQUEST = struct.pack("!ii", 8, 80877103)


@dataclass
class Shop:
    spec: Spec
    ca: CertificateAuthority
    server: PostgresServer
    root: Path

    def files(self, name: str, svid: Svid | None = None) -> SvidFiles:
        """Write `svid` (default: a fresh one for `name`) to a new private directory."""
        svid = svid or self.ca.issue(name, TTL)
        directory = self.root / f"{name}-{svid.serial:x}"
        return write_svid_files(directory, svid, self.ca.bundle_pem())

    def dsn(self, user: str, files: SvidFiles | None = None) -> str:
        files = files or self.files(user)
        return self.server.connection_settings(
            user, cert=files.cert, key=files.key, bundle=files.bundle
        )

    def no_cert_dsn(self, user: str, **extra: str) -> str:
        """TLS that verifies the server, but no client certificate (the files do not exist)."""
        missing = self.root / "missing"
        fields = conninfo_to_dict(self.dsn(user))
        fields.update(sslcert=str(missing / "cert.pem"), sslkey=str(missing / "key.pem"), **extra)
        return make_conninfo("", **fields)


def connect(dsn: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(dsn, connect_timeout=5, autocommit=True)


def refused(dsn: str, match: str) -> None:
    with pytest.raises(psycopg.OperationalError, match=match):
        connect(dsn).close()


def served_serial(server: PostgresServer) -> int:
    """The serial of the certificate the server presents to a new connection (SSLRequest + TLS)."""
    assert server.port is not None
    with socket.create_connection((server.host, server.port), timeout=5) as raw:
        raw.sendall(SSL_REQUEST)
        assert raw.recv(1) == b"S"
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # only reading which certificate is served
        with context.wrap_socket(raw) as tls:
            der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def shop_spec(tmp_path: Path, **changes: object) -> Spec:
    """The shop spec, its datastore changed as given, read from `tmp_path`."""
    base = load_spec(SHOP)
    store = dataclasses.replace(base.datastores["shopdb"], **changes)  # type: ignore[arg-type]
    return dataclasses.replace(
        base, path=tmp_path / "trustproof.yaml", datastores={"shopdb": store}
    )


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    spec = load_spec(SHOP)
    ca = CertificateAuthority(spec.trust_domain, SystemClock())  # OpenSSL uses the real clock
    root = tmp_path_factory.mktemp("shopdb")
    server = PostgresServer(spec, "shopdb", ca, root / "run")
    try:
        server.start()
        yield Shop(spec, ca, server, root)
    finally:
        server.stop()


# -- grants: what each workload may do, and the twin it may not -----------------------------------


def test_orders_reads_and_writes_orders_and_reads_products(shop: Shop) -> None:
    with connect(shop.dsn("orders")) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("orders",)
        row = conn.execute("INSERT INTO orders (customer) VALUES ('carol') RETURNING id").fetchone()
        assert row is not None  # the serial column's sequence was granted with INSERT
        conn.execute("UPDATE orders SET status = 'paid' WHERE id = %s", row)
        assert conn.execute("SELECT status FROM orders WHERE id = %s", row).fetchone() == ("paid",)
        conn.execute("INSERT INTO order_items VALUES (%s, 2, 1)", row)
        assert len(conn.execute("SELECT name FROM products").fetchall()) == 3


def test_orders_may_not_delete_orders(shop: Shop) -> None:
    with (
        connect(shop.dsn("orders")) as conn,
        pytest.raises(
            errors.InsufficientPrivilege, match="permission denied for table orders"
        ) as e,
    ):
        conn.execute("DELETE FROM orders")
    assert e.value.sqlstate == "42501"


def test_orders_may_not_insert_products(shop: Shop) -> None:
    with (
        connect(shop.dsn("orders")) as conn,
        pytest.raises(
            errors.InsufficientPrivilege, match="permission denied for table products"
        ) as e,
    ):
        conn.execute("INSERT INTO products VALUES (9, 'free lunch', 0)")
    assert e.value.sqlstate == "42501"


def test_storefront_reads_products(shop: Shop) -> None:
    with connect(shop.dsn("storefront")) as conn:
        assert conn.execute("SELECT count(*) FROM products").fetchone() == (3,)


def test_storefront_may_not_read_orders(shop: Shop) -> None:
    with (
        connect(shop.dsn("storefront")) as conn,
        pytest.raises(
            errors.InsufficientPrivilege, match="permission denied for table orders"
        ) as e,
    ):
        conn.execute("SELECT * FROM orders")
    assert e.value.sqlstate == "42501"


def test_storefront_may_not_draw_from_the_orders_sequence(shop: Shop) -> None:
    with (
        connect(shop.dsn("storefront")) as conn,
        pytest.raises(errors.InsufficientPrivilege, match="permission denied for sequence"),
    ):
        conn.execute("SELECT nextval('orders_id_seq')")


def test_roles_hold_exactly_the_spec_grants_and_no_password(shop: Shop) -> None:
    expected = shop.spec.datastores["shopdb"].roles
    with connect(shop.server.admin_settings()) as conn:
        roles = conn.execute("SELECT rolname FROM pg_roles WHERE rolname !~ '^pg_'").fetchall()
        assert sorted(str(r) for (r,) in roles) == sorted([ADMIN_ROLE, *expected])
        for role, grants in expected.items():
            attributes = conn.execute(
                "SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolinherit,"
                " rolreplication, rolbypassrls, rolpassword IS NULL FROM pg_authid"
                " WHERE rolname = %s",
                (role,),
            ).fetchone()
            assert attributes == (True, False, False, False, False, False, False, True), role
            for table in TABLES:
                for privilege in PRIVILEGES:
                    held = conn.execute(
                        "SELECT has_table_privilege(%s, %s, %s)", (role, table, privilege)
                    ).fetchone()
                    assert held == (privilege in grants.get(table, ()),), (role, table, privilege)
            assert conn.execute(
                "SELECT has_schema_privilege(%s, 'public', 'CREATE')", (role,)
            ).fetchone() == (False,)
        public = conn.execute(
            "SELECT has_database_privilege('public', 'shop', 'CONNECT'),"
            " has_database_privilege('public', 'shop', 'TEMP')"
        ).fetchone()
        assert public == (False, False)


# -- authentication: the valid certificate above, and every way of not having one ----------------


def test_no_client_certificate_is_refused_by_pg_hba(shop: Shop) -> None:
    refused(shop.no_cert_dsn("orders"), "connection requires a valid client certificate")


def test_a_password_instead_of_a_certificate_is_refused(shop: Shop) -> None:
    dsn = shop.no_cert_dsn("orders", password="x", sslmode="require")
    refused(dsn, "connection requires a valid client certificate")


def test_plaintext_is_rejected_by_the_hostnossl_line(shop: Shop) -> None:
    dsn = f"host=127.0.0.1 port={shop.server.port} dbname=shop user=orders sslmode=disable"
    refused(dsn, r'pg_hba.conf rejects connection for host "127.0.0.1".*no encryption')


def test_a_certificate_from_an_untrusted_ca_fails_the_handshake(shop: Shop) -> None:
    impostor = CertificateAuthority(shop.spec.trust_domain, SystemClock())  # same names, other key
    files = shop.files("orders", impostor.issue("orders", TTL))
    refused(shop.dsn("orders", files), "SSL error: tlsv1 alert unknown ca")


def test_another_workloads_certificate_cannot_log_in_as_orders(shop: Shop) -> None:
    refused(
        shop.dsn("orders", shop.files("storefront")),
        'certificate authentication failed for user "orders"',
    )


def test_no_certificate_reaches_the_admin_role_over_tcp(shop: Shop) -> None:
    dsn = shop.dsn(ADMIN_ROLE, shop.files("orders"))
    refused(dsn, f'certificate authentication failed for user "{ADMIN_ROLE}"')


def test_a_revoked_certificate_is_refused_once_the_crl_is_refreshed(shop: Shop) -> None:
    svid = shop.ca.issue("orders", TTL)
    dsn = shop.dsn("orders", shop.files("orders", svid))
    connect(dsn).close()  # the twin: valid until revoked
    shop.ca.revoke(svid)
    shop.server.refresh_crl()
    refused(dsn, "SSL error: .*certificate revoked")
    connect(shop.dsn("orders")).close()  # the others are unaffected


# -- server certificate rotation -----------------------------------------------------------------


def test_a_rotated_server_certificate_is_served_and_verifies(shop: Shop) -> None:
    dsn = shop.dsn("orders")
    before = served_serial(shop.server)
    new = shop.server.rotate_server_certificate()
    assert new.serial != before
    assert served_serial(shop.server) == new.serial
    connect(dsn).close()  # verify-full against the new certificate's IP SAN


def test_a_server_certificate_for_another_address_fails_verify_full(shop: Shop) -> None:
    dsn = shop.dsn("orders")
    try:
        shop.server.rotate_server_certificate(shop.ca.issue("shopdb", TTL, ips=["127.0.0.9"]))
        refused(dsn, 'server certificate for "127.0.0.9" does not match host name "127.0.0.1"')
    finally:
        shop.server.rotate_server_certificate()
    connect(dsn).close()


def test_a_certificate_postgresql_refuses_is_reported_and_the_old_one_kept(shop: Shop) -> None:
    served = served_serial(shop.server)
    good = shop.ca.issue("shopdb", TTL, ips=["127.0.0.1"])
    mismatched = dataclasses.replace(good, private_key=shop.ca.issue("x", TTL).private_key)
    with pytest.raises(DatastoreError, match="key values mismatch") as caught:
        shop.server.rotate_server_certificate(mismatched)
    assert "SSL configuration was not reloaded" in str(caught.value)
    assert served_serial(shop.server) == served
    shop.server.refresh_crl()  # the files were put back: a later reload is clean
    connect(shop.dsn("orders")).close()


# -- starting and stopping -----------------------------------------------------------------------


def port_is_free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            return False
        return True


def assert_cleaned_up(server: PostgresServer) -> None:
    assert server.pid is None
    assert server.home is not None
    assert not server.home.exists()


def test_stop_leaves_no_process_no_key_and_a_free_port(tmp_path: Path) -> None:
    spec = load_spec(SHOP)
    ca = CertificateAuthority(spec.trust_domain, SystemClock())
    server = PostgresServer(spec, "shopdb", ca, tmp_path / "run", cache_dir=tmp_path / "cache")
    try:
        timings = asyncio.run(server.start_async())
        assert timings.template_created  # an empty cache: this start ran initdb
        pid, port, home = server.pid, server.port, server.home
        assert pid is not None
        assert port is not None
        assert home is not None
        os.killpg(pid, 0)  # the twin: running, the group exists and the port is taken
        assert not port_is_free("127.0.0.1", port)
        assert (home / "tls" / "server.key").exists()
    finally:
        asyncio.run(server.stop_async())
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)
    assert port_is_free("127.0.0.1", port)
    assert not home.exists()
    assert server.pid is None
    server.stop()  # idempotent
    assert (
        "connection authorized: user=trustproof:admin"
        in (tmp_path / "run" / "postgres.log").read_text()
    )


def test_a_busy_port_in_the_spec_is_reported_with_a_hint(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        spec = shop_spec(tmp_path, port=port)
        ca = CertificateAuthority(spec.trust_domain, SystemClock())
        server = PostgresServer(spec, "shopdb", ca, tmp_path / "run")
        with pytest.raises(DatastoreError, match="exited with code 1 while starting") as caught:
            server.start()
    assert "could not bind IPv4 address" in str(caught.value)
    assert caught.value.hint.startswith(f"is port {port} free?")
    assert_cleaned_up(server)


BROKEN_SCHEMA = """\
-- a schema with a typo on line 5
CREATE TABLE orders (id serial PRIMARY KEY, customer text NOT NULL);

CREATE TABLE order_items (
    quantity integr NOT NULL
);
"""


@pytest.mark.parametrize(
    ("files", "roles", "expected"),
    [
        (
            {"db/schema.sql": BROKEN_SCHEMA},
            {"orders": {"orders": ("select",)}},
            r'^db/schema\.sql:5:14: type "integr" does not exist \(SQLSTATE 42704\)',
        ),
        (
            {"db/schema.sql": "CREATE TABLE orders (id integer PRIMARY KEY);\n"},
            {"orders": {"ghosts": ("select",)}},
            r"^datastores\.shopdb\.roles\.orders\.ghosts: .*table 'ghosts', which does not exist "
            r"after running db/schema\.sql",
        ),
        (
            {
                "db/schema.sql": "CREATE TABLE orders (id integer PRIMARY KEY);\n",
                "db/seed.sql": "INSERT INTO orders VALUES (1);\nINSERT INTO orders VALUES (1);\n",
            },
            {"orders": {"orders": ("select",)}},
            r'^db/seed\.sql: duplicate key value violates unique constraint "orders_pkey" '
            r"\(SQLSTATE 23505\)\n    detail: Key \(id\)=\(1\) already exists\.",
        ),
    ],
    ids=["schema-syntax", "grant-on-missing-table", "seed-constraint"],
)
def test_a_mistake_in_the_users_sql_names_the_file_and_line(
    tmp_path: Path, files: dict[str, str], roles: dict[str, object], expected: str
) -> None:
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(content)
    seed = RelPath("db/seed.sql") if "db/seed.sql" in files else None
    spec = shop_spec(tmp_path, schema=RelPath("db/schema.sql"), seed=seed, roles=roles)
    ca = CertificateAuthority(spec.trust_domain, SystemClock())
    server = PostgresServer(spec, "shopdb", ca, tmp_path / "run")
    with pytest.raises(DatastoreError) as caught:
        server.start()
    assert caught.value.exit_code == 3
    assert re.search(expected, str(caught.value)), str(caught.value)
    assert "Traceback" not in str(caught.value)
    assert_cleaned_up(server)


def test_concurrent_template_creators_agree_on_one_template(tmp_path: Path) -> None:
    binaries, account = find_binaries(), ServerAccount.for_this_process()
    with ThreadPoolExecutor(2) as pool:
        made = list(pool.map(lambda _: ensure_template(binaries, account, tmp_path), range(2)))
    assert made[0].path == made[1].path
    assert [p.name for p in tmp_path.iterdir()] == [made[0].path.name]  # no staging left behind
    assert is_complete(made[0].path)
    again = ensure_template(binaries, account, tmp_path)
    assert (again.path, again.created, again.seconds) == (made[0].path, False, 0.0)
