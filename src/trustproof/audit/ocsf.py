"""Audit records as OCSF events (Open Cybersecurity Schema Framework, schema version 1.3.0), the
shape security teams' SIEMs ingest, no I/O.

Gateway decisions and token-service calls become **API Activity** events (class_uid 6003,
category 6 "Application Activity"): the HTTP method (or the token endpoint) is the API operation,
allowed/refused is `status_id` Success/Failure, the gateway's reason is `status_detail`, the
verified caller is `actor.user`. Records of other kinds (probe, scenario, chaos, egress, alert)
have no OCSF API Activity reading and are left out (`to_ocsf` returns None for them).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from trustproof.audit.query import caller_of

OCSF_VERSION = "1.3.0"
API_ACTIVITY = 6003
APPLICATION_ACTIVITY = 6

# OCSF API Activity activity_id: 1 Create, 2 Read, 3 Update, 4 Delete, 99 Other
_ACTIVITY = {"POST": 1, "GET": 2, "HEAD": 2, "PUT": 3, "PATCH": 3, "DELETE": 4}
_TOKEN_ACTIVITY = {"token.issue": 1, "token.admin-mint": 1, "token.introspect": 2}
_ACTIVITY_NAME = {1: "Create", 2: "Read", 3: "Update", 4: "Delete", 99: "Other"}


def _epoch_ms(text: object) -> int | None:
    if not isinstance(text, str):
        return None
    try:
        return int(datetime.fromisoformat(text).timestamp() * 1000)
    except ValueError:
        return None


def to_ocsf(record: Mapping[str, Any], run: str, version: str = "") -> dict[str, Any] | None:
    """One record as an OCSF API Activity event (`version`: trustproof's, for the metadata)."""
    kind = str(record.get("kind", ""))
    if kind == "decision":
        method = str(record.get("method", ""))
        activity = _ACTIVITY.get(method, 99)
        ok = bool(record.get("allowed"))
        status_code = record.get("status")
        operation, service, detail = method, str(record.get("service", "")), record.get("reason")
        request: dict[str, Any] = {
            "http_method": method,
            "url": {"path": record.get("path"), "hostname": service},
            "uid": record.get("request_id"),
        }
    elif kind.startswith("token."):
        activity = _TOKEN_ACTIVITY.get(kind, 4 if kind == "token.revoke" else 99)
        status_code = record.get("status")
        ok = isinstance(status_code, int) and status_code < 400
        operation, service, detail = kind, "token-service", record.get("error")
        request = {"http_method": "POST"}
    else:
        return None
    caller = caller_of(record)
    return {
        "class_uid": API_ACTIVITY,
        "class_name": "API Activity",
        "category_uid": APPLICATION_ACTIVITY,
        "category_name": "Application Activity",
        "activity_id": activity,
        "activity_name": _ACTIVITY_NAME[activity],
        "type_uid": API_ACTIVITY * 100 + activity,
        "time": _epoch_ms(record.get("time")),
        "severity_id": 1 if ok else 3,  # Informational / Medium
        "status_id": 1 if ok else 2,  # Success / Failure
        "status": "Success" if ok else "Failure",
        "status_code": None if status_code is None else str(status_code),
        "status_detail": detail,
        "actor": {"user": {"uid": caller or None, "type": "Service" if caller else "Unknown"}},
        "api": {
            "operation": operation,
            "service": {"name": service},
            "request": {"uid": record.get("request_id")},
        },
        "http_request": request,
        "http_response": {"code": status_code},
        "metadata": {
            "version": OCSF_VERSION,
            "product": {"name": "trustproof", "vendor_name": "trustproof", "version": version},
            "log_name": "audit.log",
            "correlation_uid": run,
            "uid": record.get("request_id"),
        },
        "unmapped": {"policy_ids": record.get("policy_ids"), "stage": record.get("stage")},
    }
