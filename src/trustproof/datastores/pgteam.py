"""The team's own ``pg_hba.conf`` and ``postgresql.conf`` additions (``datastores.<d>.hba`` and
``.conf``), rendered with Jinja2 so that the sandbox probes the team's real configuration.

Template variables (`template_values`): ``host``, ``port``, ``database``, ``roles`` (the workload
roles, a list), ``client_network`` (``127.0.0.1/32``), ``cert_file``, ``key_file``, ``ca_file``
and ``crl_file`` (the server's TLS files: its certificate, key, the sandbox CA bundle and CRL),
``socket_dir`` and ``admin_role``. An undefined variable is an error, never an empty string.

* ``hba``: the whole ``pg_hba.conf`` but one line. The sandbox's admin line (``local`` over the
  private socket, `pgconfig.ADMIN_ROLE`) stays first, so provisioning works whatever the team
  wrote; after it, the team's lines decide, in their order.
* ``conf``: appended to the sandbox's ``postgresql.conf`` (the last setting of a name wins), so the
  team's TLS and authentication settings are the ones in force. The settings that say where the
  sandbox's server listens and finds its files (`LOCKED`) are the sandbox's: a template setting one
  is refused with its line, before the server starts.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import jinja2

from trustproof.datastores.errors import DatastoreError
from trustproof.datastores.pgconfig import (
    ADMIN_ROLE,
    ServerConfig,
    quote_hba,
    render_pg_hba,
    render_postgresql_conf,
)

LOCKED = frozenset(
    {
        "listen_addresses",
        "port",
        "unix_socket_directories",
        "unix_socket_permissions",
        "unix_socket_group",
        "hba_file",
        "ident_file",
        "data_directory",
        "config_file",
        "external_pid_file",
        "include",
        "include_if_exists",
        "include_dir",
    }
)
_SETTING = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(?:=|\s|$)")


@dataclass(frozen=True)
class TeamTemplate:
    """A template from the spec: `label` as the spec wrote it, `path` resolved."""

    label: str
    path: Path


def configuration(
    config: ServerConfig,
    roles: Sequence[str],
    conf_template: TeamTemplate | None,
    hba_template: TeamTemplate | None,
) -> tuple[str, str]:
    """``postgresql.conf`` and ``pg_hba.conf``: the sandbox's, with the team's templates (if any)
    rendered into them."""
    conf, hba = render_postgresql_conf(config), render_pg_hba(config.database)
    values = template_values(config, roles)
    if conf_template is not None:
        additions = render(conf_template, values)
        check_conf(conf_template, additions)
        conf = team_postgresql_conf(conf, additions, conf_template.label)
    if hba_template is not None:
        hba = team_pg_hba(render(hba_template, values))
    return conf, hba


def template_values(config: ServerConfig, roles: Sequence[str]) -> dict[str, object]:
    return {
        "host": config.host,
        "port": config.port,
        "database": config.database,
        "roles": list(roles),
        "client_network": config.client_network,
        "cert_file": str(config.cert_file),
        "key_file": str(config.key_file),
        "ca_file": str(config.ca_file),
        "crl_file": str(config.crl_file),
        "socket_dir": str(config.socket_dir),
        "admin_role": ADMIN_ROLE,
    }


def render(template: TeamTemplate, values: Mapping[str, object]) -> str:
    """`template` rendered with `values`; `DatastoreError` naming file and line on any error."""
    try:
        source = template.path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8"
        raise DatastoreError(
            f"could not read the template {template.label} ({template.path}): {reason}",
            "the path is relative to the spec file; templates must be UTF-8",
        ) from exc
    environment = jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # noqa: S701 (configuration files, not HTML)
        keep_trailing_newline=True,
    )
    try:
        text = environment.from_string(source).render(values)
    except jinja2.TemplateError as exc:
        line = getattr(exc, "lineno", None) or _template_line(exc)
        where = f"{template.label}:{line}" if line else template.label
        raise DatastoreError(
            f"{where}: cannot render the template: {exc.message or exc}",
            "template variables: " + ", ".join(sorted(values)),
        ) from None
    return text if text.endswith("\n") else text + "\n"


def _template_line(exc: BaseException) -> int | None:
    """The template line a rendering error happened on (Jinja2 maps its frames to it)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == "<template>"]
    return frames[-1].lineno if frames else None


def check_conf(template: TeamTemplate, text: str) -> None:
    """Refuse a rendered ``postgresql.conf`` addition that sets a `LOCKED` setting."""
    for number, line in enumerate(text.splitlines(), start=1):
        match = _SETTING.match(line.split("#", 1)[0])
        if match and match.group(1).lower() in LOCKED:
            raise DatastoreError(
                f"{template.label}:{number}: {match.group(1)} is the sandbox's to set (where its "
                "server listens and finds its files)",
                "remove the line; the template variables host, port, socket_dir say what the "
                "sandbox chose",
            )


def team_pg_hba(team_text: str) -> str:
    """The ``pg_hba.conf`` of a datastore with a team template: the admin line, then theirs."""
    admin = f"{'local':<10} {'all':<12} {quote_hba(ADMIN_ROLE):<19} {'':<16} trust".rstrip()
    return (
        "# pg_hba.conf for one trustproof sandbox run: the sandbox's admin over its private unix\n"
        "# socket (0700), then the team's own rules, rendered from its template.\n"
        f"{admin}\n"
        "# -- the team's pg_hba.conf ------------------------------------------------------------\n"
        f"{team_text}"
    )


def team_postgresql_conf(sandbox_conf: str, team_text: str, label: str) -> str:
    heading = f"# -- the team's additions ({label}); the last setting of a name wins --"
    return f"{sandbox_conf}\n{heading}\n{team_text}"
