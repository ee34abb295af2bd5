"""Consistency: the live results compared with another source of truth.

==========================  =======================================================================
id                          what it proves
==========================  =======================================================================
``policy.live-vs-offline``  the matrix observed live equals the offline evaluation of the policies
==========================  =======================================================================
"""

from __future__ import annotations

from trustproof.chaos.scenario import Scenario
from trustproof.consistency.live_offline import live_vs_offline

SCENARIOS: tuple[tuple[str, Scenario], ...] = (("policy.live-vs-offline", live_vs_offline),)
