"""`trustproof import compose`: a draft spec from a compose file — images, ports, environment
(secrets not copied), depends_on as calls, healthchecks as hints, PostgreSQL as a datastore —
that loads as a valid spec as written; bad input is a clear usage error; nothing is overwritten."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from trustproof.cli import cli
from trustproof.errors import UsageError
from trustproof.spec import load_spec
from trustproof.spec.from_compose import container_ports, draft_from_compose, spec_name

SHOP = """\
services:
  Web_Front:
    build: {context: ./web}
    ports: ["8080:80", "127.0.0.1:9100:9100/tcp", "53:53/udp"]
    environment:
      - API_URL=http://api:5000/v1
      - SECRET_KEY=hunter2
      - DEBUG
    depends_on: [api]
    healthcheck:
      test: ["CMD", "curl", "-f", "http://localhost/healthz"]
  api:
    image: ghcr.io/acme/api:1.4
    command: [gunicorn, -b, "0.0.0.0:5000", "app:app"]
    expose: ["5000"]
    environment: {LOG_LEVEL: info, DB_PASSWORD: s3cret-pw}
    depends_on:
      db: {condition: service_healthy}
    healthcheck: {test: "pg_isready"}
  worker:
    image: acme/worker
  db:
    image: postgres:16
    environment: {POSTGRES_DB: shop, POSTGRES_PASSWORD: x}
"""


def written(tmp_path: Path, compose: str) -> tuple[Path, str]:
    text = draft_from_compose(compose, "docker-compose.yml", "shop")
    path = tmp_path / "trustproof.yaml"
    path.write_text(text)
    return path, text


def test_the_draft_carries_what_compose_says_and_loads_as_a_valid_spec(tmp_path: Path) -> None:
    path, text = written(tmp_path, SHOP)
    spec = load_spec(path)  # raises SpecError on any problem
    assert spec.trust_domain == "shop.test"
    assert set(spec.services) == {"web_front", "api", "worker"}
    web, api, worker = (spec.services[n] for n in ("web_front", "api", "worker"))
    assert web.image == "localhost/web_front:latest"
    assert "compose builds it from ./web" in text
    assert (web.port, web.other_ports) == (80, (9100,))  # the container side; udp left out
    assert web.health.path == "/healthz"
    assert web.calls == ("api",)
    assert dict(web.env) == {"API_URL": "http://api:5000/v1"}
    assert "SECRET_KEY: looks secret, value not copied" in text
    assert "hunter2" not in text
    assert "s3cret-pw" not in text
    assert "DEBUG: passed through from the host" in text
    assert "API_URL names api: calls go through its egress proxy, TRUSTPROOF_EGRESS_API" in text
    assert api.image == "ghcr.io/acme/api:1.4"
    assert api.args == ("gunicorn", "-b", "0.0.0.0:5000", "app:app")
    assert (api.port, api.calls) == (5000, ())  # db is a datastore, not a callee
    assert api.health.kind == "tcp"
    assert "uses datastore db: grant it under datastores.db.roles.api" in text
    assert worker.port == 18002
    assert "compose names no port" in text
    assert set(spec.datastores) == {"db"}
    assert spec.datastores["db"].database == "shop"
    assert "access: {services: {}, datastores: {}}" in text
    assert "policies: {files: []}" in text


def test_only_datastores_still_make_a_valid_draft(tmp_path: Path) -> None:
    path, _ = written(tmp_path, "services:\n  pg: {image: 'docker.io/library/postgres:15'}\n")
    spec = load_spec(path)
    assert (dict(spec.services), set(spec.datastores)) == ({}, {"pg"})


@pytest.mark.parametrize(
    ("compose", "message"),
    [
        ("services: [a, b]\n", "no services: mapping"),
        ("version: '3'\n", "no services: mapping"),
        ("services: {a: {image: x}\n", "not YAML"),
        ("services: {API: {image: x}, api: {image: y}}\n", "api have the same spec name"),
    ],
)
def test_bad_compose_files_are_usage_errors(compose: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        draft_from_compose(compose, "docker-compose.yml")


def test_ports_and_names() -> None:
    assert container_ports({"ports": [80, "9000-9001:8000-8001", {"target": 7000}]}) == [
        80,
        8000,
        7000,
    ]
    assert container_ports({"ports": [{"target": 53, "protocol": "udp"}]}) == []
    assert spec_name("My App!") == "my-app"
    assert spec_name("_x") == "s_x"
    assert yaml.safe_load(draft_from_compose(SHOP, "c.yml"))["trust_domain"] == "app.test"


def test_the_command_writes_the_draft_and_refuses_to_overwrite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("docker-compose.yml").write_text(SHOP)
    runner = CliRunner()
    first = runner.invoke(cli, ["import", "compose"])
    assert first.exit_code == 0, first.output
    assert "wrote trustproof.yaml" in first.output
    draft = Path("trustproof.yaml").read_text()
    assert runner.invoke(cli, ["validate"]).exit_code == 0
    again = runner.invoke(cli, ["import", "compose", "docker-compose.yml"])
    assert again.exit_code == 2
    assert "refusing to overwrite trustproof.yaml" in again.output
    assert Path("trustproof.yaml").read_text() == draft
    other = runner.invoke(cli, ["import", "compose", "docker-compose.yml", "-o", "draft.yaml"])
    assert other.exit_code == 0, other.output
    missing = runner.invoke(cli, ["import", "compose", "nope.yml", "-o", "x.yaml"])
    assert missing.exit_code == 2
    assert "cannot read nope.yml" in missing.output
    assert not Path("x.yaml").exists()
