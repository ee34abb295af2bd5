"""A draft `trustproof.yaml` from a Docker Compose file (`trustproof import compose`).

    draft = draft_from_compose(text, "docker-compose.yml", project="shop")

What a compose file says and a spec needs: each service's image (or a placeholder naming its
``build:`` directory), the port it listens on (the container side of ``ports:``, else
``expose:``; the others as ``other_ports``), its environment (values of secret-looking
variables are not copied), ``command:`` as ``args``, ``depends_on`` as ``calls`` (start order is
not proof of a call: the draft says to check), and its ``healthcheck`` as a health-check hint.
A PostgreSQL service becomes a datastore. What compose does not say — the trust domain, who may
call what (``access``), the Cedar policies, the routes, the datastore grants — is left as
commented TODOs. The draft loads as a valid spec as written (a run then proves that nothing is
allowed yet); pure text in, text out: the CLI reads and writes the files.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import yaml

from trustproof.errors import UsageError

SECRET_NAME = re.compile(r"PASS|SECRET|TOKEN|KEY|CREDENTIAL|PRIVATE", re.IGNORECASE)
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
POSTGRES_IMAGE = re.compile(r"(^|/)(postgres|postgresql)(:|@|$)")
FIRST_PORT = 18000  # placeholder ports for services compose gives none
_URL = re.compile(r"https?://[^\s'\"]+")


@dataclass
class Draft:
    name: str
    lines: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    datastores: list[str] = field(default_factory=list)


def spec_name(raw: str) -> str:
    """A compose service name as a spec name (lowercase letters, digits, '.', '-', '_')."""
    name = re.sub(r"[^a-z0-9._-]+", "-", raw.lower()).strip("-.") or "service"
    if not name[0].isalnum():
        name = f"s{name}"
    return name[:63]


def _json(value: object) -> str:
    return json.dumps(value)  # JSON is YAML: strings, lists and mappings quoted safely


def container_ports(service: Mapping[str, Any]) -> list[int]:
    """The container-side TCP ports of ``ports:`` (short and long syntax), then ``expose:``."""
    found: list[int] = []
    for entry in [*(service.get("ports") or []), *(service.get("expose") or [])]:
        if isinstance(entry, Mapping):
            target, protocol = entry.get("target"), str(entry.get("protocol", "tcp"))
        else:
            text = str(entry)
            text, _, protocol = text.partition("/")
            target = text.rsplit(":", 1)[-1].split("-")[0]
            protocol = protocol or "tcp"
        port = int(str(target)) if str(target).isdigit() else 0
        if protocol == "tcp" and 0 < port < 65536 and port not in found:
            found.append(port)
    return found


def environment(service: Mapping[str, Any]) -> tuple[dict[str, str], list[str]]:
    """(variables copied, notes about those not copied)."""
    raw = service.get("environment") or {}
    pairs: list[tuple[str, str | None]] = []
    if isinstance(raw, Mapping):
        pairs = [(str(k), None if v is None else str(v)) for k, v in raw.items()]
    elif isinstance(raw, list):
        for item in raw:
            key, sep, text = str(item).partition("=")
            pairs.append((key, text if sep else None))
    copied: dict[str, str] = {}
    notes: list[str] = []
    for key, value in pairs:
        if not ENV_NAME.match(key) or key.upper().startswith("TRUSTPROOF_"):
            notes.append(f"{key}: not a name a spec accepts; set it another way")
        elif value is None:
            notes.append(f"{key}: passed through from the host in compose; give it a value")
        elif SECRET_NAME.search(key):
            notes.append(f"{key}: looks secret, value not copied; give it a test value")
        else:
            copied[key] = value
    return copied, notes


def health_hint(service: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(a ``health:`` flow mapping, the compose test as a comment) from ``healthcheck``."""
    check = service.get("healthcheck")
    if not isinstance(check, Mapping) or check.get("disable"):
        return None, None
    test = check.get("test")
    text = " ".join(str(t) for t in test) if isinstance(test, list) else str(test or "")
    url = _URL.search(text)
    if url:
        path = urlsplit(url.group(0)).path or "/"
        return _json({"path": path}), text
    return '{"kind": "tcp"}', text


def depends_on(service: Mapping[str, Any]) -> list[str]:
    raw = service.get("depends_on") or []
    names = list(raw) if isinstance(raw, Mapping | list) else []
    return [spec_name(str(n)) for n in names]


def _service(
    raw_name: str, service: Mapping[str, Any], index: int, datastores: set[str], peers: set[str]
) -> Draft:
    draft = Draft(spec_name(raw_name))
    out = draft.lines
    out.append(f"  {draft.name}:" + (f"   # compose: {raw_name}" if raw_name != draft.name else ""))
    out += _image_lines(draft.name, service)
    ports = container_ports(service)
    if ports:
        out.append(f"    port: {ports[0]}")
    else:
        out.append(f"    port: {FIRST_PORT + index}   # TODO: compose names no port: the real one")
    out.append(
        "    # it must listen on 127.0.0.1:port (TRUSTPROOF_HOST/TRUSTPROOF_PORT): callers reach it"
    )
    out.append("    # through trustproof's gateway, nothing is published")
    if ports[1:]:
        out.append(f"    other_ports: {_json(ports[1:])}")
    out += _env_lines(draft.name, service, peers)
    health, test = health_hint(service)
    if health is not None:
        out.append(f"    health: {health}   # compose healthcheck: {test}")
    else:
        out.append('    health: {"kind": "tcp"}   # TODO: an HTTP path answering 2xx, if any')
    out.append("    routes: []   # TODO: what it serves, e.g. [GET /orders, 'GET /orders/{id}']")
    for callee in depends_on(service):
        (draft.datastores if callee in datastores else draft.calls).append(callee)
    if draft.calls:
        out.append(f"    calls: {_json(draft.calls)}")
        out.append("    # from depends_on (start order): keep only the services it calls over HTTP")
    for store in draft.datastores:
        out.append(
            f"    # uses datastore {store}: grant it under datastores.{store}.roles.{draft.name} "
            f"and access.datastores.{store}.{draft.name}"
        )
    return draft


def _image_lines(name: str, service: Mapping[str, Any]) -> list[str]:
    out = []
    image = service.get("image")
    if isinstance(image, str) and image:
        out.append(f"    image: {_json(image)}")
    else:
        build = service.get("build")
        context = build.get("context", ".") if isinstance(build, Mapping) else build or "."
        out.append(f"    image: {_json(f'localhost/{name}:latest')}")
        out.append(f"    # TODO: compose builds it from {context}: build it, and name it here")
    command = service.get("command")
    if isinstance(command, str | list) and command:
        out.append(f"    args: {_json(command if isinstance(command, str) else list(command))}")
    if service.get("entrypoint"):
        out.append("    # TODO: compose overrides the entrypoint; fold it into args (the command)")
    return out


def _env_lines(name: str, service: Mapping[str, Any], peers: set[str]) -> list[str]:
    env, notes = environment(service)
    out = [f"    env: {_json(env)}"] if env else []
    out += [f"    # env {note}" for note in notes]
    for key, value in env.items():
        for other in sorted(peers - {name}):
            if re.search(rf"//{re.escape(other)}(?=[:/]|$)", value):
                out.append(
                    f"    # env {key} names {other}: calls go through its egress proxy, "
                    f"TRUSTPROOF_EGRESS_{re.sub(r'[^A-Z0-9]', '_', other.upper())}"
                )
    return out


def _datastore(raw_name: str, service: Mapping[str, Any]) -> list[str]:
    name = spec_name(raw_name)
    env, _ = environment(service)
    database = env.get("POSTGRES_DB")
    lines = [
        f"  {name}:   # compose: {raw_name} ({service.get('image')})",
        "    engine: postgresql",
    ]
    if database:
        lines.append(f"    database: {_json(spec_name(database))}")
    lines += [
        "    # schema: db/schema.sql      # TODO: the SQL that creates its tables",
        "    # roles: {orders: {orders: [select, insert]}}   # TODO: one role per calling service",
    ]
    return lines


HEADER = """\
# A draft made by `trustproof import compose {source}`. Fill in the TODOs, then:
#   trustproof validate && trustproof run
# Until `access` lists who may call what, every call is expected to be refused.
version: 1
trust_domain: {project}.test   # TODO: your SPIFFE trust domain (spiffe://<it>/<service>)

personas: {{}}
# TODO: the people and CI identities that call the services, e.g.
#   alice: {{roles: [customer]}}
"""

FOOTER = """
policies: {files: []}
# TODO: the Cedar policies the gateways enforce, e.g. files: [policies/app.cedar]
#   (`trustproof init` in an empty directory writes an example)

access: {services: {}, datastores: {}}
# TODO: the oracle, kept apart from the policies: what must be allowed, e.g.
#   services:
#     orders: {alice: [GET /orders], storefront: ['*']}
"""


def draft_from_compose(text: str, source: str, project: str = "app") -> str:
    """The draft spec for the compose file `text` (`source` names it in messages)."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UsageError(
            f"{source}: not YAML: {exc}".splitlines()[0], "pass a docker-compose.yml"
        ) from None
    services = document.get("services") if isinstance(document, Mapping) else None
    if not isinstance(services, Mapping) or not services:
        raise UsageError(
            f"{source}: no services: mapping", "a compose file lists its containers under services:"
        )
    entries = [(str(k), v if isinstance(v, Mapping) else {}) for k, v in services.items()]
    stores = {
        spec_name(name): (name, service)
        for name, service in entries
        if POSTGRES_IMAGE.search(str(service.get("image", "")))
    }
    names = [spec_name(name) for name, _ in entries]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise UsageError(
            f"{source}: services {', '.join(duplicates)} have the same spec name",
            "spec names are lowercase: rename one of them in the compose file",
        )
    lines = [HEADER.format(source=source, project=spec_name(project))]
    lines.append("services:" if len(stores) < len(entries) else "services: {}")
    for index, (name, service) in enumerate(entries):
        if spec_name(name) not in stores:
            lines += _service(name, service, index, set(stores), set(names)).lines
    if stores:
        lines.append("\ndatastores:   # PostgreSQL, run by trustproof with certificate auth")
        for name, service in stores.values():
            lines += _datastore(name, service)
    lines.append(FOOTER)
    return "\n".join(lines)
