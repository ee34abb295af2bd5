"""Every alert of a run is in results.json and in every report format."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from lxml import etree

from trustproof.report import FORMATS, render
from trustproof.results import AlertRecord, Results, from_json

ALERT = AlertRecord(
    rule="denial-spike",
    when="denial-spike",
    severity="medium",
    title="denial spike: spiffe://shop.test/orders refused 25 times",
    detail="25 requests refused outside the probes",
    subject="spiffe://shop.test/orders",
    count=25,
    key="denial-spike:spiffe://shop.test/orders",
)
SCHEMAS = Path(__file__).resolve().parents[2] / "data" / "junit"
RUN = Results(1, "2030-01-01T00:00:00+00:00", 1.0, 1.0, False, {}, (), (), spec="trustproof.yaml")


def test_alerts_round_trip_through_results_json() -> None:
    with_alert = replace(RUN, alerts=(ALERT,))
    assert from_json(json.loads(render(with_alert, "json"))) == with_alert
    assert json.loads(render(RUN, "json"))["alerts"] == []


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f != "json"])
def test_every_report_shows_the_alert_and_none_when_there_is_none(fmt: str) -> None:
    shown = render(replace(RUN, alerts=(ALERT,)), fmt)
    assert "denial spike" in shown
    assert "denial spike" not in render(RUN, fmt)  # the twin
    if fmt == "junit":  # still valid JUnit
        for name in ("junit-10.xsd", "jenkins-junit-4.xsd"):
            schema = etree.XMLSchema(etree.parse(str(SCHEMAS / name)))
            parser = etree.XMLParser(resolve_entities=False, no_network=True)
            schema.assertValid(etree.fromstring(shown.encode(), parser))
