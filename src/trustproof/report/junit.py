"""JUnit XML, the format every CI system reads (Jenkins, GitLab, GitHub test reporters, ...).

Shape: one ``<testsuite>`` per boundary (named by the boundary), one ``<testcase>`` per case
(``classname`` the boundary, ``name`` the case id), and the scenarios in a suite of their own
named ``scenarios``; what the services themselves tried to reach (`trustproof.report.outbound`)
is the ``<system-out>`` of a suite ``outbound attempts`` without tests. A case whose verdict is
not ``pass`` carries a ``<failure>`` whose ``type`` is the verdict (``over-permission``,
``wrong-stage``, ``inconclusive`` — an answer neither clearly served nor clearly refused, a
failure of the gate too, ...) and whose text says what
was expected, what was observed, the probe, the stage, the reason and the evidence; the verdict
``error`` (the probe could not run) is an ``<error>``, as CI tools distinguish "the test found a
problem" from "the test could not run". A skipped scenario is ``<skipped>``.

The document validates against the Jenkins JUnit schemas (tests/data/junit/). Every text passes
through `trustproof.scrub.scrub` (evidence quotes what servers said), and characters XML 1.0
cannot carry (control characters a server might send) are written as ``\\xNN``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence

from trustproof.report.outbound import INTRO, NONE_LINE, TITLE, outbound_lines, watched
from trustproof.results import CaseRecord, Results, ScenarioRecord, evidence_lines
from trustproof.scrub import scrub

# Characters outside XML 1.0's Char production: ElementTree would write them and break the file.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def clean(text: str) -> str:
    """Scrubbed, and safe to put in an XML document (attribute or text)."""
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group(0)):02x}", scrub(text))


def render_junit(results: Results) -> str:
    """The JUnit XML document for a run (UTF-8 text with an XML declaration)."""
    root = ET.Element("testsuites", name="trustproof")
    totals = [0, 0, 0, 0]  # tests, failures, errors, skipped
    for boundary, cases in results.boundaries().items():
        suite = _suite(root, boundary, results)
        counts = [len(cases), 0, 0, 0]  # tests, failures, errors, skipped
        for case in cases:
            if kind := _case(suite, case):
                counts[kind] += 1
        _set_counts(suite, counts, wall_seconds(cases))
        totals = [t + c for t, c in zip(totals, counts, strict=True)]
    if results.scenarios:
        suite = _suite(root, "scenarios", results)
        counts = [len(results.scenarios), 0, 0, 0]
        for scenario in results.scenarios:
            if kind := _scenario(suite, scenario):
                counts[kind] += 1
        _set_counts(suite, counts, sum(s.elapsed_s for s in results.scenarios))
        totals = [t + c for t, c in zip(totals, counts, strict=True)]
    if watched(results):
        # no test of its own (the `egress.observed` cases are the gate): the list, as output
        suite = _suite(root, TITLE.lower(), results)
        _set_counts(suite, [0, 0, 0, 0], 0.0)
        found = outbound_lines(results)
        text = [TITLE, INTRO if found else NONE_LINE, *found]
        ET.SubElement(suite, "system-out").text = clean("\n".join(text))
    if results.alerts:  # no test of their own (the gate is the cases'): listed for readers
        suite = _suite(root, "alerts", results)
        ET.SubElement(suite, "system-out").text = clean(
            "\n".join(
                f"{a.severity} [{a.rule}] {a.title} (x{a.count}): {a.detail}"
                for a in results.alerts
            )
        )
        _set_counts(suite, [0, 0, 0, 0], 0.0)
    root.set("tests", str(totals[0]))
    root.set("failures", str(totals[1]))
    root.set("errors", str(totals[2]))
    # the cases' wall-clock time (they run concurrently), then the scenarios (one after another)
    root.set("time", _seconds(results.elapsed_s + sum(s.elapsed_s for s in results.scenarios)))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"


def wall_seconds(cases: Sequence[CaseRecord]) -> float:
    """The wall-clock time a boundary's cases took: from the first start to the last end (they
    run concurrently: the sum of their times is not how long anyone waited). Results written
    before cases had start times give the longest case, a lower bound."""
    if not cases:
        return 0.0
    if all(c.started_ms == 0.0 for c in cases):
        return max(c.elapsed_ms for c in cases) / 1000
    first = min(c.started_ms for c in cases)
    last = max(c.started_ms + c.elapsed_ms for c in cases)
    return (last - first) / 1000


def _suite(root: ET.Element, name: str, results: Results) -> ET.Element:
    suite = ET.SubElement(root, "testsuite", name=clean(name), tests="0")
    if results.started_at:
        suite.set("timestamp", clean(results.started_at))
    properties = ET.SubElement(suite, "properties")
    for key, value in (
        ("spec", results.spec),
        ("trust_domain", results.trust_domain),
        ("results_version", str(results.version)),
        ("stopped_early", "true" if results.stopped_early else "false"),
        ("shard", None if results.shard is None else str(results.shard)),
        ("merged_shards", str(len(results.merged_from)) if results.merged_from else None),
    ):
        if value is not None:
            ET.SubElement(properties, "property", name=key, value=clean(value))
    return suite


def _set_counts(suite: ET.Element, counts: list[int], seconds: float) -> None:
    tests, failures, errors, skipped = counts
    suite.set("tests", str(tests))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    suite.set("skipped", str(skipped))
    suite.set("time", _seconds(seconds))


def _case(suite: ET.Element, case: CaseRecord) -> int:
    """Append one case; returns which count it adds to (1 failure, 2 error, 0 none)."""
    element = ET.SubElement(
        suite,
        "testcase",
        classname=clean(case.boundary),
        name=clean(case.id),
        time=_seconds(case.elapsed_ms / 1000),
    )
    if case.ok:
        return 0
    tag = "error" if case.verdict == "error" else "failure"
    problem = ET.SubElement(
        element,
        tag,
        message=clean(f"{case.verdict}: expected {case.expected}; observed {case.observed}"),
        type=clean(case.verdict),
    )
    problem.text = clean("\n".join(failure_lines(case)))
    return 2 if tag == "error" else 1


def failure_lines(case: CaseRecord) -> list[str]:
    """What a failing case's report says: expected vs observed, then where and why."""
    lines = [
        f"verdict:  {case.verdict}",
        f"expected: {case.expected}",
        f"observed: {case.observed}",
        f"probe:    {case.probe}",
        f"stage:    {case.stage or '-'}",
        f"reason:   {case.reason or '-'}",
        f"caller:   {case.caller}",
        f"operation: {case.operation}" + (f" ({case.variant})" if case.variant else ""),
        "evidence:",
    ]
    return lines + [f"  {line}" for line in evidence_lines(case.evidence)]


def _scenario(suite: ET.Element, scenario: ScenarioRecord) -> int:
    """Append one scenario; returns which count it adds to (1 fail, 2 error, 3 skip, 0 pass)."""
    element = ET.SubElement(
        suite,
        "testcase",
        classname="scenarios",
        name=clean(scenario.id),
        time=_seconds(scenario.elapsed_s),
    )
    if scenario.verdict == "pass":
        return 0
    if scenario.verdict == "skip":
        # text, not a message attribute: the older Jenkins schema allows no attribute here
        ET.SubElement(element, "skipped").text = clean(scenario.summary)
        return 3
    tag = "error" if scenario.verdict == "error" else "failure"
    problem = ET.SubElement(
        element, tag, message=clean(scenario.summary), type=clean(scenario.verdict)
    )
    lines = [scenario.summary, *scenario.evidence]
    lines += [f"{name}: {value:g}" for name, value in scenario.figures.items()]
    lines += [f"{ms:9.1f} ms  {event}" for ms, event in scenario.timeline]
    problem.text = clean("\n".join(lines))
    return 2 if tag == "error" else 1


def _seconds(value: float) -> str:
    return f"{value:.3f}"
