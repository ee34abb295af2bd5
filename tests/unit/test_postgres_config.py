"""The PostgreSQL datastore without PostgreSQL: rendered config, generated SQL, discovery, cache.

No processes, no sockets; only files under tmp_path. Each rule comes with the twin that breaks it.
"""

from __future__ import annotations

import os
import re
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from trustproof.clock import ManualClock
from trustproof.datastores import ADMIN_ROLE, DatastoreError, find_binaries
from trustproof.datastores.pgaccount import ServerAccount, scratch_root
from trustproof.datastores.pgbinaries import parse_version
from trustproof.datastores.pgconfig import (
    ServerConfig,
    admin_dsn,
    client_dsn,
    quote_hba,
    quote_setting,
    render_pg_hba,
    render_postgresql_conf,
)
from trustproof.datastores.pgprocess import postmaster_status
from trustproof.datastores.pgprovision import (
    create_role,
    database_grants,
    line_and_column,
    schema_grants,
    sequence_grant,
    table_grant,
)
from trustproof.datastores.pgtemplate import (
    INITDB_OPTIONS,
    _publish,
    cache_root,
    is_complete,
    template_name,
)
from trustproof.identity import CertificateAuthority, InvalidSpiffeId
from trustproof.spec.values import BadValue, Name

INSTALL = "apt-get install -y postgresql"


def text(statement: sql.Composable) -> str:
    return statement.as_string(None)


def rules(hba: str) -> list[list[str]]:
    return [line.split() for line in hba.splitlines() if line.strip() and not line.startswith("#")]


def settings(conf: str) -> dict[str, str]:
    pairs = re.findall(r"^(\w+) = (.*)$", conf, re.MULTILINE)
    return dict(pairs)


def config(tmp_path: Path) -> ServerConfig:
    tls = tmp_path / "tls"
    return ServerConfig(
        host="127.0.0.1",
        port=54321,
        database="shop",
        socket_dir=tmp_path / "socket",
        hba_file=tmp_path / "pg_hba.conf",
        ident_file=tmp_path / "pg_ident.conf",
        cert_file=tls / "server.crt",
        key_file=tls / "server.key",
        ca_file=tls / "ca.crt",
        crl_file=tls / "crl.pem",
    )


# -- pg_hba.conf -------------------------------------------------------------------------------


def test_hba_admits_the_admin_on_the_socket_and_workloads_by_certificate_only() -> None:
    assert rules(render_pg_hba("shop")) == [
        ["local", "all", f'"{ADMIN_ROLE}"', "trust"],
        ["hostssl", '"shop"', "all", "127.0.0.1/32", "cert"],
        ["hostnossl", "all", "all", "0.0.0.0/0", "reject"],
        ["hostnossl", "all", "all", "::/0", "reject"],
    ]


def test_hba_has_no_plaintext_password_or_tcp_trust_line() -> None:
    for rule in rules(render_pg_hba("shop")):
        kind, method = rule[0], rule[-1]
        assert kind in {"local", "hostssl", "hostnossl"}, rule  # never `host` (plaintext allowed)
        assert method not in {"password", "md5", "scram-sha-256", "ident", "peer"}, rule
        if kind != "local":
            assert method in {"cert", "reject"}, rule


def test_hba_quotes_the_database_so_a_keyword_name_matches_literally() -> None:
    assert rules(render_pg_hba("all"))[1][1] == '"all"'


def test_hba_refuses_a_name_that_would_break_the_file() -> None:
    with pytest.raises(DatastoreError, match=r"cannot write the name 'shop all' into pg_hba"):
        quote_hba("shop all")
    with pytest.raises(DatastoreError, match="pg_hba"):
        render_pg_hba('sh"op')


def test_the_admin_role_can_never_be_a_certificate_or_a_workload() -> None:
    ca = CertificateAuthority("shop.test", ManualClock(datetime(2030, 1, 1, tzinfo=UTC)))
    assert ca.issue("orders", timedelta(minutes=5)).certificate  # the twin: a workload can
    with pytest.raises(InvalidSpiffeId):
        ca.issue(ADMIN_ROLE, timedelta(minutes=5))
    with pytest.raises(BadValue):
        Name.parse(ADMIN_ROLE)


# -- postgresql.conf ---------------------------------------------------------------------------


def test_conf_listens_on_loopback_with_tls_only_settings(tmp_path: Path) -> None:
    conf = settings(render_postgresql_conf(config(tmp_path)))
    assert conf["listen_addresses"] == "'127.0.0.1'"
    assert conf["port"] == "54321"
    assert conf["unix_socket_directories"] == f"'{tmp_path / 'socket'}'"
    assert conf["unix_socket_permissions"] == "0700"
    assert conf["ssl"] == "on"
    assert conf["ssl_cert_file"] == f"'{tmp_path / 'tls' / 'server.crt'}'"
    assert conf["ssl_key_file"] == f"'{tmp_path / 'tls' / 'server.key'}'"
    assert conf["ssl_ca_file"] == f"'{tmp_path / 'tls' / 'ca.crt'}'"
    assert conf["ssl_crl_file"] == f"'{tmp_path / 'tls' / 'crl.pem'}'"
    assert conf["ssl_min_protocol_version"] == "'TLSv1.2'"
    assert conf["password_encryption"] == "'scram-sha-256'"
    assert conf["hba_file"] == f"'{tmp_path / 'pg_hba.conf'}'"
    assert conf["log_connections"] == "on"
    for setting in ("fsync", "synchronous_commit", "full_page_writes"):
        assert conf[setting] == "off"


def test_conf_strings_escape_quotes_and_backslashes() -> None:
    assert quote_setting("/tmp/o'brien\\x") == "'/tmp/o''brien\\\\x'"


def test_conf_refuses_a_path_with_a_line_break() -> None:
    with pytest.raises(DatastoreError, match="line break"):
        quote_setting("/tmp/a\nssl = off")


# -- DSNs ----------------------------------------------------------------------------------------


def test_client_dsn_is_certificate_auth_with_full_server_verification(tmp_path: Path) -> None:
    dsn = client_dsn(
        host="127.0.0.1",
        port=5432,
        database="shop",
        user="orders",
        cert=tmp_path / "my certs" / "cert.pem",
        key=tmp_path / "my certs" / "key.pem",
        bundle=tmp_path / "bundle.pem",
    )
    assert conninfo_to_dict(dsn) == {
        "host": "127.0.0.1",
        "port": "5432",
        "dbname": "shop",
        "user": "orders",
        "sslmode": "verify-full",
        "sslrootcert": str(tmp_path / "bundle.pem"),
        "sslcert": str(tmp_path / "my certs" / "cert.pem"),
        "sslkey": str(tmp_path / "my certs" / "key.pem"),
    }
    assert "password" not in dsn


def test_admin_dsn_goes_through_the_socket_directory(tmp_path: Path) -> None:
    assert conninfo_to_dict(admin_dsn(tmp_path, 5432, "shop")) == {
        "host": str(tmp_path),
        "port": "5432",
        "dbname": "shop",
        "user": ADMIN_ROLE,
    }


# -- generated SQL -------------------------------------------------------------------------------


def test_a_workload_role_may_log_in_and_nothing_else() -> None:
    assert text(create_role("orders")) == (
        'CREATE ROLE "orders" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT '
        "NOREPLICATION NOBYPASSRLS"
    )
    assert "PASSWORD" not in text(create_role("orders"))


def test_identifiers_are_quoted_not_interpolated() -> None:
    assert text(create_role('x" SUPERUSER --')).startswith('CREATE ROLE "x"" SUPERUSER --" LOGIN')


def test_database_and_schema_are_closed_to_public_then_opened_per_role() -> None:
    assert [text(s) for s in database_grants("shop", ["orders", "payments"])] == [
        'REVOKE ALL ON DATABASE "shop" FROM PUBLIC',
        'GRANT CONNECT ON DATABASE "shop" TO "orders"',
        'GRANT CONNECT ON DATABASE "shop" TO "payments"',
    ]
    roles = {"orders": {"orders": ["select"]}, "billing": {"ledger.entries": ["select"]}}
    assert [text(s) for s in schema_grants(roles)] == [
        "REVOKE ALL ON SCHEMA public FROM PUBLIC",
        'GRANT USAGE ON SCHEMA "public" TO "orders"',
        'GRANT USAGE ON SCHEMA "ledger" TO "billing"',
        'GRANT USAGE ON SCHEMA "public" TO "billing"',
    ]


def test_table_grants_are_exactly_the_listed_privileges() -> None:
    assert text(table_grant("orders", "orders", ["select", "insert", "SELECT"])) == (
        'GRANT SELECT, INSERT ON TABLE "orders" TO "orders"'
    )
    assert text(table_grant("billing", "ledger.entries", ["update"])) == (
        'GRANT UPDATE ON TABLE "ledger"."entries" TO "billing"'
    )
    assert text(sequence_grant("orders", "public", "orders_id_seq")) == (
        'GRANT USAGE ON SEQUENCE "public"."orders_id_seq" TO "orders"'
    )


@pytest.mark.parametrize("privilege", ["all", "select; DROP TABLE orders", "usage"])
def test_a_privilege_outside_the_table_privileges_is_refused(privilege: str) -> None:
    with pytest.raises(DatastoreError, match="unknown table privilege"):
        table_grant("orders", "orders", ["select", privilege])


@pytest.mark.parametrize(
    ("position", "expected"),
    [(1, (1, 1)), (3, (1, 3)), (4, (2, 1)), (12, (3, 3)), (10_000, (3, 10))],
)
def test_a_postgresql_position_becomes_line_and_column(
    position: int, expected: tuple[int, int]
) -> None:
    assert line_and_column("ab\ncdefg\nselect x;", position) == expected


# -- discovery -----------------------------------------------------------------------------------


def fake_programs(directory: Path, *names: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        program = directory / name
        program.write_text("#!/bin/sh\n")
        program.chmod(0o755)
    return directory


def test_path_wins_when_it_has_both_programs(tmp_path: Path) -> None:
    on_path = fake_programs(tmp_path / "bin", "initdb", "postgres")
    fake_programs(tmp_path / "lib" / "15" / "bin", "initdb", "postgres", "pg_ctl")
    found = find_binaries(str(on_path), roots=[tmp_path / "lib"])
    assert (found.initdb, found.postgres, found.pg_ctl) == (
        on_path / "initdb",
        on_path / "postgres",
        None,
    )


def test_otherwise_the_highest_installed_version_is_used(tmp_path: Path) -> None:
    half = fake_programs(tmp_path / "bin", "initdb")  # never mixed with another installation
    for version in ("9.6", "15", "13"):
        fake_programs(tmp_path / "lib" / version / "bin", "initdb", "postgres", "pg_ctl")
    fake_programs(tmp_path / "lib" / "16" / "bin", "initdb")  # incomplete: skipped
    found = find_binaries(str(half), roots=[tmp_path / "lib"])
    assert found.directory == tmp_path / "lib" / "15" / "bin"
    assert found.pg_ctl == tmp_path / "lib" / "15" / "bin" / "pg_ctl"


def test_missing_programs_are_named_with_the_install_hint(tmp_path: Path) -> None:
    with pytest.raises(DatastoreError) as caught:
        find_binaries(str(tmp_path / "empty"), roots=[tmp_path / "none"])
    assert "'initdb' and 'postgres' were not found" in str(caught.value)
    assert caught.value.hint.startswith(f"install it: {INSTALL}")
    assert caught.value.exit_code == 3


def test_one_missing_program_is_named_alone(tmp_path: Path) -> None:
    only_initdb = fake_programs(tmp_path / "bin", "initdb")
    with pytest.raises(DatastoreError, match=r"program 'postgres' was not found \(looked on PATH"):
        find_binaries(str(only_initdb), roots=[tmp_path / "none"])


def test_programs_from_two_installations_are_not_mixed(tmp_path: Path) -> None:
    path = os.pathsep.join(
        str(fake_programs(tmp_path / d, n)) for d, n in (("a", "initdb"), ("b", "postgres"))
    )
    with pytest.raises(DatastoreError, match="never in the same directory"):
        find_binaries(path, roots=[])


@pytest.mark.parametrize(
    ("output", "version"),
    [
        ("postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n", "15.18"),
        ("postgres (PostgreSQL) 17devel\n", "17"),
    ],
)
def test_version_is_read_from_postgres_version(output: str, version: str) -> None:
    assert parse_version(output) == version


def test_a_version_that_is_not_postgresql_is_an_error() -> None:
    with pytest.raises(DatastoreError, match="could not read the PostgreSQL version"):
        parse_version("postgres 1.0 (some other program)")


# -- template cache ------------------------------------------------------------------------------


def test_the_cache_key_changes_with_the_version_and_the_initdb_options() -> None:
    base = template_name("15.18")
    assert base.startswith("pg-template-15.18-")
    assert template_name("15.18") == base
    assert template_name("16.4") != base
    assert template_name("15.18", (*INITDB_OPTIONS, "--data-checksums")) != base


def test_cache_root_follows_xdg_and_ignores_a_relative_value() -> None:
    assert cache_root({"XDG_CACHE_HOME": "/var/cache/me"}) == Path("/var/cache/me/trustproof")
    assert cache_root({"XDG_CACHE_HOME": "relative"}) == Path.home() / ".cache" / "trustproof"


def complete(directory: Path, marker: str) -> Path:
    (directory / "global").mkdir(parents=True)
    (directory / "PG_VERSION").write_text(marker)
    (directory / "global" / "pg_control").write_text("")
    return directory


def test_the_first_complete_template_published_wins_a_race(tmp_path: Path) -> None:
    final = tmp_path / "pg-template-15.18-x"
    _publish(complete(tmp_path / ".first.tmp", "first"), final)
    loser = complete(tmp_path / ".second.tmp", "second")
    _publish(loser, final)  # no error: the other creator's template stands
    assert (final / "PG_VERSION").read_text() == "first"
    assert loser.exists()  # the caller deletes its own staging directory


def test_an_incomplete_directory_is_not_a_template(tmp_path: Path) -> None:
    assert is_complete(complete(tmp_path / "whole", "15"))
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "PG_VERSION").write_text("15")
    assert not is_complete(tmp_path / "half")


# -- files and process helpers --------------------------------------------------------------------


def test_files_are_replaced_with_exactly_the_mode_asked(tmp_path: Path) -> None:
    me = ServerAccount("me", os.getuid(), os.getgid(), switch=False)
    key = tmp_path / "server.key"
    key.write_text("old")
    old_umask = os.umask(0o077)
    try:
        me.write_file(key, b"new", 0o600)
        me.write_file(tmp_path / "server.crt", b"cert", 0o644)
    finally:
        os.umask(old_umask)
    assert key.read_bytes() == b"new"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "server.crt").stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["server.crt", "server.key"]


def test_scratch_root_is_used_only_with_room_to_spare(tmp_path: Path) -> None:
    assert scratch_root(tmp_path, min_free=0) == tmp_path
    assert scratch_root(tmp_path, min_free=2**62) is None
    assert scratch_root(tmp_path / "missing", min_free=0) is None


def test_readiness_is_line_8_of_postmaster_pid(tmp_path: Path) -> None:
    pidfile = tmp_path / "postmaster.pid"
    assert postmaster_status(pidfile) == "absent"
    pidfile.write_text("123\n/data\n1700000000\n5432\n/sock\n127.0.0.1\n  1 2\n")
    assert postmaster_status(pidfile) == "starting"
    pidfile.write_text(pidfile.read_text() + "ready   \n")
    assert postmaster_status(pidfile) == "ready"


def test_datastore_errors_are_scrubbed() -> None:
    error = DatastoreError("could not connect: password=hunter2 host=x", "PGPASSWORD=hunter2")
    assert "hunter2" not in str(error)
    assert error.exit_code == 3
