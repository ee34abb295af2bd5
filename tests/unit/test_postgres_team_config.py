"""The team's own pg_hba.conf and postgresql.conf templates (`trustproof.datastores.pgteam`):
rendered with the sandbox's values, the admin's socket line kept first, and the settings that
say where the sandbox's server listens refused with file and line. No server, no sockets.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from trustproof.datastores.errors import DatastoreError
from trustproof.datastores.pgconfig import ADMIN_ROLE, ServerConfig
from trustproof.datastores.pgteam import TeamTemplate, configuration

CONFIG = ServerConfig(
    host="127.0.0.1",
    port=55432,
    database="shop",
    socket_dir=Path("/srv/pg/socket"),
    hba_file=Path("/srv/pg/pg_hba.conf"),
    ident_file=Path("/srv/pg/pg_ident.conf"),
    cert_file=Path("/srv/pg/tls/server.crt"),
    key_file=Path("/srv/pg/tls/server.key"),
    ca_file=Path("/srv/pg/tls/ca.crt"),
    crl_file=Path("/srv/pg/tls/crl.pem"),
)


def template(tmp_path: Path, name: str, text: str) -> TeamTemplate:
    path = tmp_path / name
    path.write_text(text)
    return TeamTemplate(f"db/{name}", path)


def test_without_templates_the_sandbox_files_are_unchanged() -> None:
    conf, hba = configuration(CONFIG, ["orders"], None, None)
    assert "ssl = on" in conf
    assert "team" not in conf
    assert 'hostssl    "shop"' in hba


def test_the_teams_hba_follows_the_admin_line_rendered_with_the_sandbox_values(
    tmp_path: Path,
) -> None:
    hba = template(
        tmp_path,
        "pg_hba.conf.j2",
        "{% for r in roles %}hostssl {{ database }} {{ r }} {{ client_network }} cert\n"
        "{% endfor %}",
    )
    _, text = configuration(CONFIG, ["orders", "payments"], None, hba)
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert lines[0].split() == ["local", "all", f'"{ADMIN_ROLE}"', "trust"]
    assert lines[1:] == [
        "hostssl shop orders 127.0.0.1/32 cert",
        "hostssl shop payments 127.0.0.1/32 cert",
    ]


def test_the_teams_conf_comes_last_so_its_settings_win(tmp_path: Path) -> None:
    conf = template(tmp_path, "postgresql.conf.j2", "ssl_ca_file = '{{ ca_file }}'\n")
    text, _ = configuration(CONFIG, [], conf, None)
    assert text.rstrip().endswith("ssl_ca_file = '/srv/pg/tls/ca.crt'")
    assert text.index("ssl = on") < text.index("the team's additions (db/postgresql.conf.j2)")


@pytest.mark.parametrize("line", ["listen_addresses = '*'", "  port 5432", "include_dir 'x'"])
def test_a_setting_that_moves_the_server_is_refused_with_its_line(
    tmp_path: Path, line: str
) -> None:
    conf = template(tmp_path, "postgresql.conf.j2", f"# ours\nssl = on\n{line}  # why\n")
    with pytest.raises(DatastoreError) as caught:
        configuration(CONFIG, [], conf, None)
    assert str(caught.value.message).startswith("db/postgresql.conf.j2:3: ")
    assert "is the sandbox's to set" in caught.value.message
    assert "template variables host, port" in caught.value.hint


def test_a_commented_out_locked_setting_is_fine(tmp_path: Path) -> None:
    conf = template(tmp_path, "postgresql.conf.j2", "# listen_addresses = '*'\n")
    configuration(CONFIG, [], conf, None)


def test_an_undefined_variable_names_the_file_line_and_the_variables(tmp_path: Path) -> None:
    hba = template(tmp_path, "pg_hba.conf.j2", "# rules\nhostssl {{ databse }} all x cert\n")
    with pytest.raises(DatastoreError) as caught:
        configuration(CONFIG, [], None, hba)
    assert caught.value.message == (
        "db/pg_hba.conf.j2:2: cannot render the template: 'databse' is undefined"
    )
    assert "database" in caught.value.hint
    assert "client_network" in caught.value.hint
