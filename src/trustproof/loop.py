"""The event loop trustproof's sandbox runs on: uvloop where it is installed, asyncio's own
otherwise.

The sandbox serves its gateways, egress proxies and token service from one process, so their
requests all wait in one event loop; uvloop (libuv, written in Cython) runs the same asyncio code
with less overhead per callback and per socket read. It is a dependency (``pyproject.toml``), but
trustproof still starts without it (asyncio's loop), and ``TRUSTPROOF_LOOP`` chooses by hand:
``auto`` (the default: uvloop if it imports), ``uvloop`` (an error when it is missing) or
``asyncio``.

`run(coro)` replaces ``asyncio.run`` for the command line (``run``, ``up``, ``chaos``,
``probe``); `new_loop()` makes the loop a background thread runs (the ``with Sandbox(...)`` API).
"""

from __future__ import annotations

import asyncio
import importlib
import os
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Literal, TypeVar, cast, get_args

from trustproof.errors import UsageError

LoopKind = Literal["uvloop", "asyncio"]
LoopSetting = Literal["auto", "uvloop", "asyncio"]
ENV = "TRUSTPROOF_LOOP"
SETTINGS: tuple[str, ...] = get_args(LoopSetting)
T = TypeVar("T")

LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def _setting(environ: Mapping[str, str]) -> LoopSetting:
    raw = environ.get(ENV, "").strip().lower() or "auto"
    if raw not in SETTINGS:
        raise UsageError(
            f"{ENV}={raw[:40]!r} is not an event loop trustproof knows",
            f"set it to one of: {', '.join(SETTINGS)} (or leave it unset: auto)",
        )
    return cast(LoopSetting, raw)


def _uvloop_factory() -> LoopFactory | None:
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        return None
    factory: LoopFactory = uvloop.new_event_loop
    return factory


def choose(environ: Mapping[str, str] | None = None) -> tuple[LoopKind, LoopFactory]:
    """Which loop to run on, and the function that makes one (`environ`: ``os.environ``)."""
    setting = _setting(os.environ if environ is None else environ)
    if setting != "asyncio":
        factory = _uvloop_factory()
        if factory is not None:
            return "uvloop", factory
        if setting == "uvloop":
            raise UsageError(
                f"{ENV}=uvloop but uvloop is not installed",
                "install it (`pip install uvloop`) or unset the variable (auto falls back)",
            )
    return "asyncio", asyncio.new_event_loop


def new_loop() -> asyncio.AbstractEventLoop:
    """A new event loop of the chosen kind (not set as the thread's current loop)."""
    return choose()[1]()


def run(coro: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` on the chosen loop."""
    try:
        factory = choose()[1]
    except BaseException:
        coro.close()  # never started: no "never awaited" warning on top of the error
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coro)
