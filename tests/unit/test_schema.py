"""The JSON Schema accepts the reference spec and rejects broken copies of it."""

from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from trustproof.spec import json_schema


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.fixture
def shop(shop_spec_path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(shop_spec_path.read_text())
    return data


def test_schema_accepts_the_shop_example(
    validator: jsonschema.Draft202012Validator, shop: dict[str, Any]
) -> None:
    assert list(validator.iter_errors(shop)) == []


def test_schema_accepts_the_starter_spec(validator: jsonschema.Draft202012Validator) -> None:
    text = resources.files("trustproof.spec").joinpath("starter/trustproof.yaml").read_text()
    assert list(validator.iter_errors(yaml.safe_load(text))) == []


@pytest.mark.parametrize(
    ("mutate", "complaint"),
    [
        (lambda d: d.update(servces={}), "Additional properties are not allowed ('servces'"),
        (lambda d: d["services"]["orders"].update(port="8080"), "'8080' is not of type 'integer'"),
        (lambda d: d["ttl"].update(token="2 minutes"), "does not match"),
        (
            lambda d: (
                d["services"]["orders"]["ingress"].update(client_cert="maybe")
                if "ingress" in d["services"]["orders"]
                else d["services"]["orders"].update(ingress={"client_cert": "maybe"})
            ),
            "'maybe' is not one of",
        ),
        (lambda d: d.pop("trust_domain"), "'trust_domain' is a required property"),
        (
            lambda d: d["services"]["orders"]["routes"].append("FETCH /x"),
            "'FETCH /x' does not match",
        ),
    ],
    ids=["unknown-key", "port-string", "bad-duration", "bad-enum", "missing-required", "bad-route"],
)
def test_schema_rejects_a_broken_copy(
    validator: jsonschema.Draft202012Validator, shop: dict[str, Any], mutate: Any, complaint: str
) -> None:
    broken = copy.deepcopy(shop)
    mutate(broken)
    messages = [error.message for error in validator.iter_errors(broken)]
    assert any(complaint in message for message in messages), messages


def test_schema_documents_fields() -> None:
    schema = json_schema()
    service = schema["$defs"]["Service"]
    assert service["properties"]["calls"]["description"].startswith("Services this one calls")
    assert service["required"] == ["port"]
    assert service["oneOf"] == [{"required": ["command"]}, {"required": ["image"]}]
