"""Policies are parsed and validated once per content: the memo of `load_policies` and the
one-parse-per-file path give exactly what parsing each policy on its own gives."""

from __future__ import annotations

import json

import cedarpy
from policy_support import ShopCopy

from trustproof.policy.cedar import CedarPolicyEngine
from trustproof.policy.sources import load_policies
from trustproof.spec import load_spec


def test_each_policy_is_what_parsing_it_alone_gives(shop: ShopCopy) -> None:
    shop.add_policy('@id("later")\nforbid (principal, action == Action::"DELETE", resource);')
    bundle = load_policies(shop.spec())
    assert len(bundle.policies) == 10
    for source in bundle.policies:
        alone = json.loads(cedarpy.policies_to_json_str(source.text))["staticPolicies"]
        assert source.est == alone["policy0"], source.policy_id
    assert bundle.policies[-1].annotation == "later"
    line = shop.line_of('@id("later")')
    assert bundle.policies[-1].policy_id == f"policies/shop.cedar:{line}"


def test_load_spec_and_the_engine_share_one_bundle(shop: ShopCopy) -> None:
    spec = load_spec(shop.spec_file)  # validates the policies
    assert CedarPolicyEngine.from_spec(spec).bundle is load_policies(spec)


def test_a_changed_policy_file_is_read_again(shop: ShopCopy) -> None:
    spec = shop.spec()
    before = load_policies(spec)
    assert load_policies(spec) is before
    shop.edit_policies(lambda text: text.replace('"customers-checkout"', '"checkout"'))
    after = load_policies(spec)
    assert after is not before
    assert "checkout" in {source.annotation for source in after.policies}
    assert "customers-checkout" not in {source.annotation for source in after.policies}


def test_an_invalid_policy_is_still_located_after_the_whole_set_check(shop: ShopCopy) -> None:
    line = shop.add_policy('permit (principal, action == Action::"FETCH", resource);')
    problems = load_policies(shop.spec()).problems
    assert [(p.line, "unrecognized action" in p.message) for p in problems] == [(line, True)]
