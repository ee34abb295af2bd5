"""The command line, through click's runner: exit codes, output, and no tracebacks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from trustproof.cli import EXIT_INTERNAL, cli, offline


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_validate_good_spec_exits_0(runner: CliRunner, shop_spec_path: Path) -> None:
    result = runner.invoke(cli, ["validate", str(shop_spec_path)])
    assert result.exit_code == 0, result.output
    assert "valid — 3 services, 3 personas, 1 datastore" in result.output


def test_validate_unknown_key_exits_2_with_location_and_did_you_mean(
    runner: CliRunner, tmp_path: Path
) -> None:
    spec = tmp_path / "trustproof.yaml"
    spec.write_text("trust_domain: t.test\npersonas:\n  alice:\n    rolse: [x]\n")
    result = runner.invoke(cli, ["validate", str(spec)])
    assert result.exit_code == 2
    assert f"{spec}:4:5: personas.alice.rolse: unknown key 'rolse'" in result.stderr
    assert "hint: did you mean 'roles'?" in result.stderr
    assert "Traceback" not in result.output + result.stderr


def test_validate_missing_file_exits_2(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["validate", str(tmp_path / "absent.yaml")])
    assert result.exit_code == 2
    assert "no such file" in result.stderr


def test_validate_defaults_to_trustproof_yaml_here(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("trustproof.yaml").write_text("trust_domain: here.test\n")
    result = runner.invoke(cli, ["validate"])
    assert result.exit_code == 0, result.stderr
    assert "trust domain here.test" in result.output


def test_validate_finds_the_spec_from_a_subdirectory(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "trustproof.yaml").write_text("trust_domain: above.test\n")
    deep = tmp_path / "services" / "orders"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    monkeypatch.delenv("TRUSTPROOF_SPEC", raising=False)
    result = runner.invoke(cli, ["validate"])
    assert result.exit_code == 0, result.stderr
    assert "trust domain above.test" in result.output


def test_the_nearest_spec_wins_and_none_is_a_clear_error(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRUSTPROOF_SPEC", raising=False)
    (tmp_path / "trustproof.yaml").write_text("trust_domain: above.test\n")
    (tmp_path / "inner").mkdir()
    (tmp_path / "inner" / "trustproof.yaml").write_text("trust_domain: inner.test\n")
    monkeypatch.chdir(tmp_path / "inner")
    assert "inner.test" in runner.invoke(cli, ["validate"]).output
    lonely = tmp_path.parent / f"{tmp_path.name}-lonely"
    lonely.mkdir()
    monkeypatch.chdir(lonely)
    missing = runner.invoke(cli, ["validate"])
    assert missing.exit_code == 2
    assert "no such file" in missing.stderr


def test_trustproof_spec_names_the_spec(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "elsewhere.yaml").write_text("trust_domain: env.test\n")
    (tmp_path / "trustproof.yaml").write_text("trust_domain: here.test\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRUSTPROOF_SPEC", str(tmp_path / "elsewhere.yaml"))
    assert "trust domain env.test" in runner.invoke(cli, ["validate"]).output
    given = runner.invoke(cli, ["validate", "trustproof.yaml"])  # an argument beats both
    assert "trust domain here.test" in given.output


def test_validate_error_output_is_scrubbed(runner: CliRunner, tmp_path: Path) -> None:
    spec = tmp_path / "trustproof.yaml"
    token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    spec.write_text(f"trust_domain: t.test\nservices:\n  a: {{command: x, port: '{token}'}}\n")
    result = runner.invoke(cli, ["validate", str(spec)])
    assert result.exit_code == 2
    assert token not in result.stderr
    assert "[REDACTED JWT" in result.stderr


def test_schema_prints_json_schema(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert schema["$schema"].endswith("2020-12/schema")
    assert "services" in schema["properties"]


def test_init_writes_a_valid_starter_and_refuses_to_overwrite(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(offline, "free_port", lambda: 24242)  # unit tests open no sockets
    first = runner.invoke(cli, ["init"])
    assert first.exit_code == 0, first.output
    assert Path("trustproof.yaml").read_text().startswith("# trustproof.yaml")
    assert "    port: 24242 " in Path("trustproof.yaml").read_text()
    assert Path("policies/app.cedar").is_file()
    assert "TrustproofMiddleware(app)" in Path("app.py").read_text()
    valid = runner.invoke(cli, ["validate"])
    assert valid.exit_code == 0, valid.stderr
    before = Path("trustproof.yaml").read_text()
    second = runner.invoke(cli, ["init"])
    assert second.exit_code == 2
    assert "refusing to overwrite trustproof.yaml" in second.stderr
    assert Path("trustproof.yaml").read_text() == before


def test_init_refuses_when_only_the_policy_exists(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("policies").mkdir()
    Path("policies/app.cedar").write_text("// mine\n")
    monkeypatch.setattr(offline, "free_port", lambda: 24242)
    result = runner.invoke(cli, ["init"])
    assert result.exit_code == 2
    assert not Path("trustproof.yaml").exists()
    assert Path("policies/app.cedar").read_text() == "// mine\n"


def test_init_example_shop_copies_the_whole_example_and_nothing_else(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shop_spec_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli, ["init", "--example", "shop"])
    assert result.exit_code == 0, result.output
    shop = shop_spec_path.parent
    tracked = {
        path.relative_to(shop)
        for path in shop.rglob("*")
        if path.is_file()
        and not {"__pycache__", "trustproof-reports", ".trustproof"} & set(path.parts)
        and path.suffix != ".pyc"
    }
    copied = {path.relative_to(tmp_path) for path in tmp_path.rglob("*") if path.is_file()}
    assert copied == tracked
    assert Path("services/orders.py").read_bytes() == (shop / "services/orders.py").read_bytes()
    assert runner.invoke(cli, ["validate"]).exit_code == 0


def test_init_example_refuses_to_overwrite_any_file(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("db").mkdir()
    Path("db/seed.sql").write_text("-- mine\n")
    result = runner.invoke(cli, ["init", "--example", "shop"])
    assert result.exit_code == 2
    assert "refusing to overwrite db/seed.sql" in result.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["db", "seed.sql"]  # nothing written
    unknown = runner.invoke(cli, ["init", "--example", "bank"])
    assert unknown.exit_code == 2
    assert "'shop'" in unknown.stderr


def test_example_files_leave_run_output_and_caches_behind(tmp_path: Path) -> None:
    from trustproof.cli.examples import example_files  # noqa: PLC0415

    for name in (
        "trustproof.yaml",
        "svc/app.py",
        "svc/__pycache__/app.cpython-311.pyc",
        "trustproof-reports/report.html",
        ".trustproof/run/audit.jsonl",
        "x.pyc",
    ):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    assert [str(path) for path, _ in example_files(tmp_path)] == ["svc/app.py", "trustproof.yaml"]


def test_plan_shows_matrix(runner: CliRunner, shop_spec_path: Path) -> None:
    result = runner.invoke(cli, ["plan", str(shop_spec_path)])
    assert result.exit_code == 0, result.stderr
    assert "service orders — enforced by trustproof gateway" in result.output
    assert "21 (caller, operation) pairs must be allowed and 87 refused" in result.output


def test_probes_lists_catalogue(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["probes"])
    assert result.exit_code == 0
    assert "token.alg-none" in result.output
    assert "bypass.direct-port" in result.output


def test_unknown_command_is_a_usage_error(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["frobnicate"])
    assert result.exit_code == 2
    assert "No such command 'frobnicate'" in result.stderr


def test_internal_errors_exit_70_without_traceback_or_secrets(
    runner: CliRunner, shop_spec_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(_: object) -> None:
        raise RuntimeError("boom with password=hunter2")

    monkeypatch.setattr("trustproof.cli.validate.load_spec", explode)
    result = runner.invoke(cli, ["validate", str(shop_spec_path)])
    assert result.exit_code == EXIT_INTERNAL
    assert "internal error: RuntimeError" in result.stderr
    assert "hunter2" not in result.stderr
    assert "Traceback" not in result.stderr


def test_policy_test_agrees_on_the_shop(runner: CliRunner, shop_spec_path: Path) -> None:
    result = runner.invoke(cli, ["policy", "test", str(shop_spec_path)])
    assert result.exit_code == 0, result.output
    assert "agree with the access matrix on all 60 cells" in result.output


def test_policy_test_reports_over_permission_and_exits_1(
    runner: CliRunner, shop_spec_path: Path, tmp_path: Path
) -> None:
    shutil.copytree(shop_spec_path.parent, tmp_path / "shop")
    policy = tmp_path / "shop" / "policies" / "shop.cedar"
    policy.write_text(
        policy.read_text() + '\n@id("oops-bob-buys")\npermit (principal == Persona::"bob", '
        'action == Action::"POST", resource == Route::"storefront /checkout");\n'
    )
    result = runner.invoke(cli, ["policy", "test", str(tmp_path / "shop" / "trustproof.yaml")])
    assert result.exit_code == 1
    assert "over-permission" in result.output
    assert 'bob -> storefront POST /checkout  allowed by "oops-bob-buys"' in result.output


def test_validate_json_valid_and_invalid(runner: CliRunner, tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("trust_domain: j.test\n")
    ok = runner.invoke(cli, ["validate", "--json", str(good)])
    assert ok.exit_code == 0
    assert json.loads(ok.output)["valid"] is True
    bad = tmp_path / "bad.yaml"
    bad.write_text("trust_domain: j.test\npersonas:\n  alice:\n    rolse: [x]\n")
    refused = runner.invoke(cli, ["validate", "--json", str(bad)])
    assert refused.exit_code == 2
    (problem,) = json.loads(refused.output)["problems"]
    assert (problem["line"], problem["field"]) == (4, "personas.alice.rolse")
    assert problem["hint"] == "did you mean 'roles'?"


def test_probes_and_plan_json(runner: CliRunner, shop_spec_path: Path) -> None:
    listed = json.loads(runner.invoke(cli, ["probes", "--json"]).output)
    assert {"id": "token.expired", "title": "expired token", "family": "token"} in listed
    planned = json.loads(runner.invoke(cli, ["plan", "--json", str(shop_spec_path)]).output)
    assert (planned["allowed"], planned["refused"]) == (21, 87)
    orders = next(b for b in planned["boundaries"] if b["name"] == "orders")
    assert {"caller": "storefront", "operation": "GET /orders", "allowed": True} in orders["cells"]


def test_plan_stays_readable_with_many_callers(runner: CliRunner, tmp_path: Path) -> None:
    personas = "".join(f"  user-with-a-long-name-{i:02d}: {{}}\n" for i in range(20))
    spec = tmp_path / "trustproof.yaml"
    spec.write_text(
        "trust_domain: many.test\npersonas:\n" + personas + "services:\n"
        "  api: {command: [x], port: 18080, routes: [GET /a, GET /b]}\n"
        "access: {services: {api: {user-with-a-long-name-07: [GET /a]}}}\n"
    )
    result = runner.invoke(cli, ["plan", str(spec)])
    assert result.exit_code == 0, result.stderr
    assert "…" not in result.output
    assert "  user-with-a-long-name-07: allow GET /a" in result.output
    assert "  user-with-a-long-name-19: deny all" in result.output


def test_a_reader_that_closed_the_pipe_ends_the_command_quietly(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`trustproof audit show | head`: the reader closes the pipe; no "internal error", and the
    exit status a shell gives a process ended by SIGPIPE (141)."""
    from trustproof.cli.base import EXIT_BROKEN_PIPE, friendly  # noqa: PLC0415

    @friendly
    def prints_a_lot() -> None:
        raise BrokenPipeError(32, "Broken pipe")

    with pytest.raises(SystemExit) as ended:
        prints_a_lot()
    assert ended.value.code == EXIT_BROKEN_PIPE == 141
    assert capsys.readouterr().err == ""
