"""Entity references the spec does not declare: a typo'd route in a `forbid` protects nothing.

Each test breaks one reference in a private copy of the shop's policies and asserts the problem
(file, line, column, message, hint); the clean shop is the failing twin of them all.
"""

from __future__ import annotations

import pytest
from policy_support import ShopCopy

from trustproof.errors import Problem, SpecError
from trustproof.policy import check_policies
from trustproof.policy.references import references
from trustproof.spec import load_spec


def only(problems: list[Problem]) -> Problem:
    assert len(problems) == 1, [p.render() for p in problems]
    return problems[0]


def test_the_shop_names_only_what_it_declares(shop: ShopCopy) -> None:
    assert check_policies(shop.spec()) == []


def test_a_forbid_on_a_mistyped_route_is_refused_at_its_position(shop: ShopCopy) -> None:
    start = shop.add_policy(
        '@id("nobody-deletes")\n'
        'forbid (principal, action == Action::"DELETE",\n'
        '        resource == Route::"orders /order/{id}");\n'
    )
    problem = only(check_policies(shop.spec()))
    assert (problem.line, problem.column) == (start + 2, len("        resource == ") + 1)
    assert problem.path == "policies.files[0]"
    assert problem.message == (
        'Route::"orders /order/{id}" names a route the spec does not declare: the policy '
        "matches no request through it"
    )
    assert problem.hint.startswith('did you mean Route::"orders /orders/{id}"?')


@pytest.mark.parametrize(
    ("before", "after", "hint"),
    [
        (
            'Workload::"storefront", action == Action::"POST",\n        resource == Route::"orders',
            'Workload::"storefrnt", action == Action::"POST",\n        resource == Route::"orders',
            'did you mean Workload::"storefront"?',
        ),
        (
            'principal in Role::"deployer"',
            'principal in Role::"deployers"',
            'did you mean Role::"deployer"?',
        ),
        (
            'resource in Service::"orders"',
            'resource in Service::"order"',
            'did you mean Service::"orders"?',
        ),
    ],
)
def test_each_entity_type_is_checked(shop: ShopCopy, before: str, after: str, hint: str) -> None:
    line = shop.line_of(before)
    shop.edit_policies(lambda t: t.replace(before, after))
    problem = only(check_policies(shop.spec()))
    assert problem.line == line
    assert problem.hint.startswith(hint)


def test_a_persona_nobody_declares(shop: ShopCopy) -> None:
    start = shop.add_policy(
        'permit (principal == Persona::"mallory", action, resource in Service::"payments");\n'
    )
    problem = only(check_policies(shop.spec()))
    assert (problem.line, problem.column) == (start, len("permit (principal == ") + 1)
    assert problem.hint == "personas are the keys under personas:"


def test_validate_fails_before_anything_starts(shop: ShopCopy) -> None:
    shop.edit_policies(
        lambda t: t.replace('Route::"storefront /checkout"', 'Route::"storefront /chekout"')
    )
    with pytest.raises(SpecError) as caught:
        load_spec(shop.spec_file)
    assert 'Route::"storefront /chekout"' in str(caught.value)


def test_comments_namespaces_and_other_types_are_not_references() -> None:
    text = (
        '// Route::"nowhere /x" in a comment\n'
        'permit (principal == Other::Route::"x", action == Action::"GET",\n'
        '  resource == Route::"a /b") when { context.note == "Role::\\"y\\"" };'
    )
    found = [(r.type, r.id, r.line, r.column) for r in references(text)]
    assert found == [("Route", "a /b", 3, 15)]
