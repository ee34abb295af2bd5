"""`check_policies`: every problem with the policies and the schema, at FILE:LINE:COL.

Each test breaks a private copy of the shop example at a known place and asserts the exact
position and the message; the clean copy (the twin of them all) has no problem.
"""

from __future__ import annotations

from pathlib import Path

from policy_support import ShopCopy

from trustproof.errors import Problem
from trustproof.policy import check_policies, load_policies
from trustproof.policy.sources import shown
from trustproof.spec import load_spec


def only(problems: list[Problem]) -> Problem:
    assert len(problems) == 1, [p.render() for p in problems]
    return problems[0]


def test_the_shop_policies_are_clean(shop_spec_path: Path) -> None:
    assert check_policies(load_spec(shop_spec_path)) == []


def test_the_clean_copy_is_clean(shop: ShopCopy) -> None:
    assert check_policies(shop.spec()) == []


def test_problems_name_the_file_as_given(shop: ShopCopy) -> None:
    shop.edit_policies(lambda t: t.replace('Action::"GET"', 'Action::"FETCH"', 1))
    problem = only(check_policies(shop.spec()))
    assert problem.file == str(shop.policy_file.resolve())
    assert shown(Path.cwd() / "x" / "y.cedar") == str(Path("x") / "y.cedar")


def test_syntax_error_at_the_offending_token(shop: ShopCopy) -> None:
    line = shop.line_of('permit (principal == Workload::"orders", action ==')
    shop.edit_policies(
        lambda t: t.replace('Workload::"orders", action ==', 'Workload::"orders", action ===')
    )
    problem = only(check_policies(shop.spec()))
    column = len('permit (principal == Workload::"orders", action ==') + 1
    assert (problem.line, problem.column) == (line, column)
    assert problem.path == "policies.files[0]"
    assert problem.message == "Cedar syntax error: unexpected token `=`"
    assert "a missing ';'" in problem.hint


def test_missing_semicolon_points_at_the_next_policy(shop: ShopCopy) -> None:
    next_policy = shop.line_of('@id("customers-own-orders")')
    shop.edit_policies(
        lambda t: t.replace(
            'resource == Route::"storefront /checkout");',
            'resource == Route::"storefront /checkout")',
        )
    )
    problem = only(check_policies(shop.spec()))
    assert (problem.line, problem.column) == (next_policy, 1)
    assert problem.message == "Cedar syntax error: unexpected token `@`"


def test_unfinished_last_policy(shop: ShopCopy) -> None:
    line = shop.add_policy('@id("unfinished")\npermit (principal, action, resource)\n')
    problem = only(check_policies(shop.spec()))
    assert (problem.line, problem.column) == (
        line + 1,
        len("permit (principal, action, resource)") + 1,
    )
    assert problem.message == "Cedar syntax error: unexpected end of input"
    assert "end every policy with ';'" in problem.hint


def test_bad_escape_inside_a_string(shop: ShopCopy) -> None:
    line = shop.add_policy(
        '@id("escape")\n'
        "permit (principal, action, resource)\n"
        'when { principal.kind like "a\\q" };\n'
    )
    problem = only(check_policies(shop.spec()))
    assert (problem.line, problem.column) == (line + 2, len('when { principal.kind like "a') + 1)
    assert "is not a valid escape" in problem.message


def test_unterminated_string(shop: ShopCopy) -> None:
    line = shop.add_policy('@id("open)\npermit (principal, action, resource);\n')
    problem = only(check_policies(shop.spec()))
    assert (problem.line, problem.column) == (line, len("@id(") + 1)
    assert problem.message == "Cedar syntax error: invalid token"


def test_every_broken_policy_is_reported(shop: ShopCopy) -> None:
    shop.edit_policies(lambda t: t.replace('Role::"customer",', 'Role::"customer" oops,', 1))
    shop.add_policy("permit (principal, action resource);\n")
    problems = check_policies(shop.spec())
    assert [p.message for p in problems] == [
        "Cedar syntax error: unexpected token `oops`",
        "Cedar syntax error: unexpected token `resource`",
    ]


def test_unknown_action_at_the_action(shop: ShopCopy) -> None:
    shop.edit_policies(
        lambda t: t.replace(
            'Action::"POST",\n        resource == Route::"payments',
            'Action::"PAY",\n        resource == Route::"payments',
        )
    )
    line = shop.line_of('Action::"PAY"')
    problem = only(check_policies(shop.spec()))
    column = len('permit (principal == Workload::"storefront", action == ') + 1
    assert (problem.line, problem.column) == (line, column)
    assert problem.message == (
        'policy "storefront-pays" does not validate against the schema: '
        'unrecognized action `Action::"PAY"`'
    )
    assert "HTTP methods declared in policies/shop.cedarschema" in problem.hint


def test_unknown_entity_type_at_the_type(shop: ShopCopy) -> None:
    shop.edit_policies(lambda t: t.replace('Role::"deployer"', 'Rolle::"deployer"'))
    line = shop.line_of('Rolle::"deployer"')
    problem = only(check_policies(shop.spec()))
    assert (problem.line, problem.column) == (line, len("permit (principal in ") + 1)
    assert problem.message.endswith("unrecognized entity type `Rolle`")
    assert 'policy "deployer-version"' in problem.message


def test_unknown_context_attribute(shop: ShopCopy) -> None:
    line = shop.add_policy(
        '@id("hours")\npermit (principal, action, resource)\nwhen { context.hour > 3 };\n'
    )
    problem = only(check_policies(shop.spec()))
    assert (problem.line, problem.column) == (line + 2, len("when { context.") + 1)
    assert problem.message.endswith("attribute `hour` in context not found")  # once, not per action
    assert "hour_utc" in problem.hint


def test_type_error_at_the_policy(shop: ShopCopy) -> None:
    line = shop.add_policy(
        '@id("noon")\npermit (principal, action, resource)\nwhen { context.hour_utc > "noon" };\n'
    )
    problem = only(check_policies(shop.spec()))
    assert (problem.line, problem.column) == (line, 1)
    assert problem.message == (
        'policy "noon" does not validate against the schema: '
        "unexpected type: expected Long but saw String"
    )


def test_scope_no_action_applies_to(shop: ShopCopy) -> None:
    line = shop.add_policy('permit (principal == Service::"orders", action, resource);\n')
    problem = only(check_policies(shop.spec()))
    assert (problem.line, problem.column) == (line, 1)
    assert problem.message == (
        "this policy does not validate against the schema: "
        "unable to find an applicable action given the policy scope constraints"
    )


def test_templates_are_refused(shop: ShopCopy) -> None:
    line = shop.add_policy("permit (principal == ?principal, action, resource);\n")
    problem = only(check_policies(shop.spec()))
    assert (problem.line, problem.message[:33]) == (line, "policy templates (?principal, ?re")


def test_duplicate_ids_are_refused(shop: ShopCopy) -> None:
    first = shop.line_of('@id("deployer-version")')
    line = shop.add_policy('@id("deployer-version")\npermit (principal, action, resource);\n')
    problem = only(check_policies(shop.spec()))
    assert problem.line == line
    assert problem.message.startswith('duplicate @id("deployer-version"): also at ')
    assert problem.message.endswith(f"shop.cedar:{first}")


def test_non_utf8_policy_file(shop: ShopCopy) -> None:
    data = b'permit (principal, action, resource) when { "\xff" };'
    shop.policy_file.write_bytes(data)
    problem = only(check_policies(shop.spec()))
    assert (problem.line, problem.column) == (0, 0)
    assert problem.message == f"the policy file is not UTF-8 text (byte {data.index(0xFF)})"


def test_schema_syntax_error(shop: ShopCopy) -> None:
    line = shop.line_of("entity Route in [Service];", shop.schema_file)
    shop.edit(shop.schema_file, lambda s: s.replace("entity Service;", "entity Service"))
    problem = only(check_policies(shop.spec()))
    assert problem.file == str(shop.schema_file.resolve())
    assert (problem.line, problem.column, problem.path) == (line, 1, "policies.schema")
    assert problem.message == "Cedar schema error: error parsing schema: unexpected token `entity`"


def test_schema_unknown_type(shop: ShopCopy) -> None:
    shop.edit(
        shop.schema_file,
        lambda s: s.replace("entity Route in [Service];", "entity Route in [Servise];"),
    )
    line = shop.line_of("Servise", shop.schema_file)
    problem = only(check_policies(shop.spec()))
    assert (problem.line, problem.column) == (line, len("entity Route in [") + 1)
    assert problem.message == "Cedar schema error: failed to resolve type: Servise"


def test_schema_that_rejects_trustproof_entities(shop: ShopCopy) -> None:
    shop.edit(shop.schema_file, lambda s: s.replace("kind: String,", "level: Long,"))
    problem = only(check_policies(shop.spec()))
    assert problem.path == "policies.schema"
    assert problem.message.startswith(
        'the schema does not accept Persona::"alice" as trustproof builds it (attributes: kind;'
    )
    assert "Persona in [Role]" in problem.hint


def test_no_schema_means_the_built_in_one(shop: ShopCopy) -> None:
    shop.edit(shop.spec_file, lambda t: t.replace("  schema: policies/shop.cedarschema\n", ""))
    bundle = load_policies(shop.spec())
    assert bundle.problems == ()
    assert bundle.schema_name == "trustproof's built-in schema"
    # the twin: the built-in schema refuses what it does not declare
    shop.edit_policies(lambda t: t.replace('Action::"GET"', 'Action::"FETCH"', 1))
    problem = only(check_policies(shop.spec()))
    assert "trustproof's built-in schema" in problem.hint


def test_policy_ids_are_file_and_line(shop: ShopCopy) -> None:
    bundle = load_policies(shop.spec())
    first = bundle.policies[0]
    assert first.annotation == "catalogue-browse"
    line = shop.line_of('@id("catalogue-browse")')
    assert first.policy_id == f"policies/shop.cedar:{line}"
    assert [p.label for p in bundle.policies][-1] == "orders-checks-payments"
    assert len(bundle.policies) == 9


def test_two_policies_on_one_line_get_distinct_ids(shop: ShopCopy) -> None:
    line = shop.add_policy(
        "permit (principal, action, resource) when { false }; "
        "permit (principal, action, resource) when { false };\n"
    )
    ids = [p.policy_id for p in load_policies(shop.spec()).policies[-2:]]
    assert ids == [f"policies/shop.cedar:{line}", f"policies/shop.cedar:{line}:54"]
