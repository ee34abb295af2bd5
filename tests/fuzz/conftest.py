"""Hypothesis profiles for the property/fuzz tests.

``ci`` (the default) runs each property briefly inside ``make test``; ``fuzz`` runs it long, for
developers: ``HYPOTHESIS_PROFILE=fuzz .venv/bin/python -m pytest -q tests/fuzz``.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "fuzz",
    max_examples=20_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
