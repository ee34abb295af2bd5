"""The one result model of a run and its `results.json` document.

Written by the suite driver, read by the reports, the command line and the pytest plugin: it
sits at the bottom of the driver layer, above the exercisers (whose `Evidence` and `CaseResult` it
records) and below every driver that uses it, so that `suite` and `report` never import each
other (see the import-linter contract in pyproject.toml).
"""

from __future__ import annotations

from trustproof.errors import ReportError
from trustproof.results.document import (
    RESULTS_FILE,
    RESULTS_VERSION,
    SUPPORTED_VERSIONS,
    from_json,
    load,
    write,
)
from trustproof.results.model import (
    AlertRecord,
    CaseRecord,
    Evidence,
    Results,
    ScenarioRecord,
    ShardRecord,
    evidence_lines,
    record_of,
)

__all__ = [
    "RESULTS_FILE",
    "RESULTS_VERSION",
    "SUPPORTED_VERSIONS",
    "AlertRecord",
    "CaseRecord",
    "Evidence",
    "ReportError",
    "Results",
    "ScenarioRecord",
    "ShardRecord",
    "evidence_lines",
    "from_json",
    "load",
    "record_of",
    "write",
]
