"""The exception tree: one root with a hint, every exception class of the package under it, and
the tree drawn in errors.py's docstring complete."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import aiohttp
import pytest

import trustproof
from trustproof import errors
from trustproof.errors import EgressError, ReportError, TrustproofError, UsageError
from trustproof.gateway.egress import CalleeMismatch, TokenUnavailable


def exception_classes() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(trustproof.__path__, "trustproof."):
        if info.name.endswith("__main__"):
            continue  # running it is the command line
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == info.name
            ):
                found[name] = value
    return found


def test_every_exception_class_descends_from_the_root() -> None:
    classes = exception_classes()
    assert {"UpstreamError", "CalleeMismatch"} <= set(classes)  # the walk reaches them
    outside = sorted(n for n, c in classes.items() if not issubclass(c, TrustproofError))
    assert outside == []


def test_the_drawn_tree_names_every_exception_class() -> None:
    doc = errors.__doc__ or ""
    missing = sorted(name for name in exception_classes() if f" {name} " not in doc)
    assert missing == []


def test_the_root_carries_a_message_and_a_hint() -> None:
    error = TrustproofError("the thing broke", "do this instead")
    assert (error.message, error.hint) == ("the thing broke", "do this instead")
    assert str(error) == "the thing broke\n    hint: do this instead"
    bare = TrustproofError("no hint")
    assert (bare.hint, str(bare)) == ("", "no hint")


@pytest.mark.parametrize("kind", [UsageError, ReportError])
def test_usage_and_report_errors_exit_2(kind: type[TrustproofError]) -> None:
    assert kind("x").exit_code == 2


def test_egress_errors_keep_their_aiohttp_nature() -> None:
    mismatch = CalleeMismatch("the server presented spiffe://x/y")
    assert isinstance(mismatch, EgressError)
    assert isinstance(mismatch, aiohttp.ClientConnectionError)
    assert str(mismatch) == "the server presented spiffe://x/y"
    assert issubclass(TokenUnavailable, EgressError)
