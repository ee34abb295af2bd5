"""`trustproof policy test` offline: the access matrix against the policies, cell by cell."""

from __future__ import annotations

from pathlib import Path

import pytest
from policy_support import ShopCopy

from trustproof.errors import SpecError
from trustproof.policy import StaticPolicyEngine, check_matrix, policy_test, render_text
from trustproof.policy.offline import representative_request
from trustproof.spec import load_spec


def test_the_shop_policies_agree_with_the_matrix(shop_spec_path: Path) -> None:
    report, code = policy_test(shop_spec_path)
    assert code == 0
    assert report.ok
    assert (report.over_permissions, report.under_permissions, report.errors) == ((), (), ())
    assert len(report.cells) == 60
    assert sum(c.expected for c in report.cells) == 12
    checkout = next(
        c for c in report.cells if (c.caller, c.operation) == ("alice", "POST /checkout")
    )
    assert checkout.decision.policy_ids == ("customers-checkout",)
    text = render_text(report)
    assert "result: the policies agree with the access matrix on all 60 cells" in text
    assert "policies: policies/shop.cedar (9 policies)" in text


def test_an_over_permissive_policy_is_reported_with_its_id(shop: ShopCopy) -> None:
    line = shop.add_policy(
        '@id("visitors-checkout")\n'
        'permit (principal in Role::"visitor", action == Action::"POST",\n'
        '        resource == Route::"storefront /checkout");\n'
    )
    report, code = policy_test(shop.spec_file)
    assert code == 1
    (cell,) = report.over_permissions
    assert (cell.caller, cell.service, cell.operation) == ("bob", "storefront", "POST /checkout")
    assert (cell.expected, cell.decision.allowed) == (False, True)
    assert cell.decision.policy_ids == ("visitors-checkout",)
    assert report.under_permissions == ()
    text = render_text(report)
    assert "over-permission: the policies allow what the matrix refuses (1):" in text
    assert (
        f'bob -> storefront POST /checkout  allowed by "visitors-checkout" '
        f"(policies/shop.cedar:{line})"
    ) in text
    assert "result: 1 disagreements" in text


def test_an_under_permissive_policy_set_is_reported(shop: ShopCopy) -> None:
    shop.edit_policies(
        lambda t: t.replace(
            '@id("customers-own-orders")\npermit (principal in Role::"customer", action == '
            'Action::"GET",\n        resource == Route::"storefront /account/orders");\n',
            "",
        )
    )
    report, code = policy_test(shop.spec_file)
    assert code == 1
    (cell,) = report.under_permissions
    assert (cell.caller, cell.operation) == ("alice", "GET /account/orders")
    assert (cell.expected, cell.decision.allowed, cell.decision.reason) == (
        True,
        False,
        "no-matching-permit",
    )
    assert report.over_permissions == ()
    assert "alice -> storefront GET /account/orders  refused: no-matching-permit" in render_text(
        report
    )


def test_a_refusal_by_error_is_not_agreement(shop: ShopCopy) -> None:
    shop.add_policy(
        '@id("overflow")\nforbid (principal, action, resource == Route::"orders /orders")\n'
        "when { context.hour_utc * 9223372036854775807 > 0 };\n"
    )
    report, code = policy_test(shop.spec_file)
    assert code == 1
    assert {(c.caller, c.operation) for c in report.under_permissions} == {
        ("storefront", "GET /orders"),
        ("storefront", "POST /orders"),
    }
    assert all(c.decision.reason == "policy-error" for c in report.errors)
    assert len(report.errors) > len(report.under_permissions)  # refusals that only agree by luck
    assert "errors: a policy failed to evaluate" in render_text(report)


def test_persona_client_cert_follows_the_ingress(shop_spec_path: Path) -> None:
    spec = load_spec(shop_spec_path)
    browser = representative_request(spec, "alice", "storefront", "GET /products")
    assert (browser.client_cert, browser.token_roles, browser.principal_kind) == (
        False,
        ("customer",),
        "persona",
    )
    direct = representative_request(spec, "alice", "orders", "GET /orders")
    assert direct.client_cert  # orders requires a client certificate
    workload = representative_request(spec, "storefront", "orders", "GET /orders/{id}")
    assert (workload.principal_kind, workload.client_cert, workload.route) == (
        "workload",
        True,
        "/orders/{id}",
    )
    assert (workload.source_ip, workload.hour_utc) == ("127.0.0.1", 12)


def test_services_without_a_gateway_are_skipped(shop: ShopCopy) -> None:
    shop.edit(
        shop.spec_file,
        lambda t: t.replace(
            "      - POST /refunds         # nobody may refund from the shop: the suite proves it"
            "\n",
            "      - POST /refunds\n    ingress: {gateway: none}\n",
        ),
    )
    report = check_matrix(shop.spec())
    assert report.skipped == ("payments",)
    assert all(c.service != "payments" for c in report.cells)
    assert "skipped payments: gateway: none" in render_text(report)


def test_another_engine_can_be_checked(shop_spec_path: Path) -> None:
    spec = load_spec(shop_spec_path)
    report = check_matrix(spec, StaticPolicyEngine({("bob", "POST", "storefront", "/checkout")}))
    assert [(c.caller, c.operation) for c in report.over_permissions] == [("bob", "POST /checkout")]
    assert len(report.under_permissions) == 12


def test_the_report_as_json(shop_spec_path: Path) -> None:
    report, _ = policy_test(shop_spec_path)
    data = report.to_json()
    assert data["ok"] is True
    cell = next(c for c in data["cells"] if c["caller"] == "ci")
    assert set(cell) >= {"expected", "decided", "verdict", "reason", "policy_ids"}


def test_broken_policies_are_a_spec_error(shop: ShopCopy) -> None:
    shop.edit_policies(lambda t: t.replace('Action::"GET"', 'Action::"FETCH"', 1))
    with pytest.raises(SpecError) as caught:
        policy_test(shop.spec_file)
    assert caught.value.exit_code == 2
    assert "unrecognized action" in caught.value.render()


def test_the_starter_agrees_with_its_matrix_on_the_built_in_schema(tmp_path: Path) -> None:
    starter = Path(__file__).resolve().parents[3] / "src" / "trustproof" / "spec" / "starter"
    (tmp_path / "policies").mkdir()
    (tmp_path / "trustproof.yaml").write_text((starter / "trustproof.yaml").read_text())
    (tmp_path / "policies" / "app.cedar").write_text((starter / "app.cedar").read_text())
    report, code = policy_test(tmp_path / "trustproof.yaml")
    assert (code, report.schema, len(report.cells)) == (0, "built-in", 4)
    assert sum(c.decision.allowed for c in report.cells) == 3
