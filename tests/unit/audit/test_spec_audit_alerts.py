"""The spec's `audit:` and `alerts:` sections: read, and refused with a clear problem."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from trustproof.errors import SpecError
from trustproof.spec import load_spec

SHOP = Path(__file__).resolve().parents[3] / "examples" / "shop"


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    target = tmp_path / "shop"
    shutil.copytree(
        SHOP, target, ignore=shutil.ignore_patterns("trustproof-reports", "__pycache__")
    )
    return target / "trustproof.yaml"


def with_sections(spec: Path, text: str) -> Path:
    spec.write_text(spec.read_text() + "\n" + text)
    return spec


def test_audit_and_alerts_are_read(shop: Path) -> None:
    spec = load_spec(
        with_sections(
            shop,
            "audit: {kek_file: keys/audit.kek, checkpoint_every: 100}\n"
            "alerts:\n"
            "  rules: [{when: denial-spike, threshold: 5, severity: low}]\n"
            "  sinks:\n"
            "    - {kind: webhook, url: 'http://127.0.0.1:9/hook', secret_env: HOOK_KEY}\n"
            "    - {kind: github, min_severity: high}\n",
        )
    )
    assert (spec.audit.kek_file, spec.audit.checkpoint_every) == ("keys/audit.kek", 100)
    assert spec.alerts.rules[0].threshold == 5
    assert [s.kind for s in spec.alerts.sinks] == ["webhook", "github"]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("alerts: {sinks: [{kind: webhook, secret_env: K}]}", "a webhook sink needs a url"),
        ("alerts: {sinks: [{kind: webhook, url: 'http://127.0.0.1:9/'}]}", "needs secret_env"),
        ("alerts: {sinks: [{kind: slack, url: 'ftp://x'}]}", "not an http(s) URL"),
        ("alerts: {rules: [{when: sometimes}]}", "alerts.rules[0].when"),
        ("alerts: {sinks: [{kind: pager}]}", "alerts.sinks[0].kind"),
        ("audit: {checkpoint_every: 0}", "audit.checkpoint_every"),
    ],
)
def test_bad_alert_and_audit_settings_are_clear_problems(
    shop: Path, text: str, fragment: str
) -> None:
    with pytest.raises(SpecError) as refused:
        load_spec(with_sections(shop, text))
    assert fragment in refused.value.render()
