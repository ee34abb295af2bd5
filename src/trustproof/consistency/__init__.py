"""Consistency: the live results compared with another source of truth.

==========================  =======================================================================
id                          what it proves
==========================  =======================================================================
``policy.live-vs-offline``  the matrix observed live equals the offline evaluation of the policies
``consistency.schema``      two environments have the same tables, columns, constraints, indexes
``consistency.grants``      ... the same roles and table grants
``consistency.row-counts``  ... the same number of rows in each table
``consistency.checksums``   ... the same rows (order-independent checksums over masked rows)
``data.unscrubbed-value``   no original sensitive value in the datastores, logs or audit file
                            (family ``data``: in `DATA_SCENARIOS`)
==========================  =======================================================================
"""

from __future__ import annotations

from trustproof.chaos.scenario import Scenario
from trustproof.consistency.datascan import unscrubbed_value
from trustproof.consistency.environments import (
    consistency_checksums,
    consistency_grants,
    consistency_row_counts,
    consistency_schema,
)
from trustproof.consistency.live_offline import live_vs_offline
from trustproof.spec.model import Spec

SCENARIOS: tuple[tuple[str, Scenario], ...] = (
    ("policy.live-vs-offline", live_vs_offline),
    ("consistency.schema", consistency_schema),
    ("consistency.grants", consistency_grants),
    ("consistency.row-counts", consistency_row_counts),
    ("consistency.checksums", consistency_checksums),
)
DATA_SCENARIOS: tuple[tuple[str, Scenario], ...] = (("data.unscrubbed-value", unscrubbed_value),)


def applies(spec: Spec, scenario_id: str) -> bool:
    """Whether the spec has what a scenario compares: ``consistency.*`` a `consistency:` section,
    ``data.*`` data samples (the suite does not choose the others, as it leaves out
    ``policy.live-vs-offline`` when no matrix case ran)."""
    if scenario_id.startswith("consistency."):
        return spec.consistency is not None
    if scenario_id.startswith("data."):
        return spec.data is not None and bool(spec.data.samples)
    return True
