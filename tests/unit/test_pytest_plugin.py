"""The pytest plugin without a sandbox (pytester, in process, no sockets): inert unless a spec
is configured; the generated cases collected as items named by their case ids, selected by -k
and by the family markers; a clear error for a missing spec or a fixture used without one."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from trustproof.probes.model import Case
from trustproof.spec import load_spec
from trustproof.suite.runner import generate


@pytest.fixture
def starter(pytester: pytest.Pytester) -> Path:
    """The spec `trustproof init` writes (small: its cases collect fast), in pytester's dir."""
    files = resources.files("trustproof.spec").joinpath("starter")
    spec = pytester.path / "spec" / "trustproof.yaml"
    (spec.parent / "policies").mkdir(parents=True)
    spec.write_text(files.joinpath("trustproof.yaml").read_text())
    (spec.parent / "policies" / "app.cedar").write_text(files.joinpath("app.cedar").read_text())
    return spec


def cases_of(spec: Path) -> list[Case]:
    return generate(load_spec(spec))


def inner(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """pytest in this process; without Hypothesis's plugin, whose summary hook would import
    Hypothesis afresh in every inner session (pytester forgets modules between runs)."""
    return pytester.runpytest_inprocess(
        "-p", "no:hypothesispytest", "-p", "no:cacheprovider", *args
    )


def collected_ids(result: pytest.RunResult) -> list[str]:
    """Case ids from `--collect-only -q` output (``path::case id`` lines)."""
    return [line.split("::", 1)[1] for line in result.outlines if "trustproof.yaml::" in line]


def test_without_a_spec_the_plugin_adds_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain():\n    pass\n")
    result = inner(pytester, "--collect-only", "-q")
    assert result.ret == 0
    assert collected_ids(result) == []
    assert "1 test collected" in result.stdout.str()


def test_the_plugin_is_registered_by_its_entry_point(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        "def test_registered(pytestconfig):\n"
        "    assert pytestconfig.pluginmanager.has_plugin('trustproof')\n"
    )
    inner(
        pytester,
    ).assert_outcomes(passed=1)


def test_every_generated_case_is_an_item_named_by_its_id(
    pytester: pytest.Pytester, starter: Path
) -> None:
    result = inner(pytester, "--trustproof-spec", str(starter), "--collect-only", "-q")
    assert result.ret == 0
    assert collected_ids(result) == [case.id for case in cases_of(starter)]


def test_the_twin_no_cases_option_collects_none(pytester: pytest.Pytester, starter: Path) -> None:
    pytester.makepyfile("def test_plain():\n    pass\n")
    result = inner(
        pytester, "--trustproof-spec", str(starter), "--trustproof-no-cases", "--collect-only", "-q"
    )
    assert collected_ids(result) == []
    assert "1 test collected" in result.stdout.str()


def test_k_and_family_markers_select_cases(pytester: pytest.Pytester, starter: Path) -> None:
    cases = cases_of(starter)
    by_k = inner(
        pytester, "--trustproof-spec", str(starter), "--collect-only", "-q", "-k", "token.expired"
    )
    expired = [c.id for c in cases if c.probe == "token.expired"]
    assert expired
    assert collected_ids(by_k) == expired
    by_mark = inner(
        pytester, "--trustproof-spec", str(starter), "--collect-only", "-q", "-m", "trustproof_tls"
    )
    tls = [c.id for c in cases if c.probe.startswith("tls.")]
    assert tls
    assert collected_ids(by_mark) == tls


def test_ini_spec_is_relative_to_the_ini_file(pytester: pytest.Pytester, starter: Path) -> None:
    project = pytester.path / "project"
    project.mkdir()
    (project / "pytest.ini").write_text("[pytest]\ntrustproof_spec = ../spec/trustproof.yaml\n")
    result = inner(pytester, "-c", str(project / "pytest.ini"), "--collect-only", "-q")
    assert len(collected_ids(result)) == len(cases_of(starter))


def test_a_missing_spec_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = inner(pytester, "--trustproof-spec", "absent.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "trustproof: no spec at" in result.stderr.str()
    assert "Traceback" not in result.stderr.str()


def test_a_fixture_without_a_spec_fails_with_a_hint(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_needs(trustproof_sandbox):\n    pass\n")
    result = inner(
        pytester,
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*trustproof: no spec configured for this session*"])


def test_a_bad_spec_is_a_collection_error_naming_each_problem(pytester: pytest.Pytester) -> None:
    spec = pytester.path / "trustproof.yaml"
    spec.write_text("trust_domain: t.test\npersonas:\n  alice:\n    rolse: [x]\n")
    result = inner(pytester, "--trustproof-spec", str(spec))
    assert result.ret == pytest.ExitCode.INTERRUPTED  # collection errors stop the session
    result.stdout.fnmatch_lines(["*trustproof.yaml:4:5: personas.alice.rolse: unknown key 'rolse'"])
    assert "SpecError" not in result.stdout.str()  # the problems, not a traceback
