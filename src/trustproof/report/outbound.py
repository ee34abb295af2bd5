"""The "Outbound attempts" section every report shows: what the services themselves tried to
reach and the sandbox stopped (`Results.egress_events`), one line per service and destination —
"orders tried 192.0.2.10:443 (tcp) 3 times — blocked", "orders looked up api.evil.example
2 times — refused". The gate is the ``egress.observed`` case of each service; this is the list."""

from __future__ import annotations

from trustproof.probes.egress_observed import PROBE_ID, describe
from trustproof.results import Results
from trustproof.scrub import scrub

TITLE = "Outbound attempts"
NONE_LINE = "None: no service tried a destination the spec does not declare."
INTRO = (
    "Destinations the services themselves tried that the spec does not declare; the sandbox "
    "stopped each (dropped connections, refused DNS queries)."
)


def outbound_lines(results: Results) -> list[str]:
    """One scrubbed line per event (a DNS name a service made up may carry anything)."""
    return [scrub(describe(event)) for event in results.egress_events]


def watched(results: Results) -> bool:
    """Whether the run observed the services' egress (it has ``egress.observed`` cases) or saw
    attempts: only then does a report show the section (on the local backend nothing is
    watched, and "none" would say more than is known)."""
    return bool(results.egress_events) or any(c.probe == PROBE_ID for c in results.cases)
