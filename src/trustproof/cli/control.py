"""The commands that talk to a running sandbox: `status`, `token`, `cert` (and `cert revoke`).

Light on purpose: they reach the controller over its unix socket with the standard library
(`trustproof.sandbox.control_client`), so they start without importing the sandbox, aiohttp or the
trust fabric (`trustproof --version`, `token` and `cert` are what scripts call in loops).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from trustproof.cli.base import friendly, out, run_dir_option
from trustproof.errors import SandboxError
from trustproof.sandbox.control_client import live_status
from trustproof.sandbox.control_client import request as control_request
from trustproof.sandbox.rundir import RunDir, private_dir


@click.command()
@run_dir_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (stable keys).")
@friendly
def status(run_dir: Path, as_json: bool) -> None:
    """What runs where: URLs, ports, pids, the discovery URL, the CA bundle, health; exit 3 when
    the sandbox does not run (its last state is still shown)."""
    run = RunDir(run_dir.absolute())
    try:
        state = control_request(run.control_socket, "GET", "/status")
    except SandboxError:
        saved = run.read_state()
        if saved is None:
            raise
        state = live_status(saved)
    running = bool(state.get("controller_running"))
    if as_json:
        click.echo(json.dumps(state, indent=2, sort_keys=True))
    else:
        _print_state(state)
        out.print(
            f"controller {state.get('controller_pid')}: {'running' if running else 'NOT running'}"
        )
    if not running:  # what is shown is the last state of a sandbox that no longer runs
        sys.exit(SandboxError.exit_code)


@click.command()
@click.argument("name")
@click.option("--aud", "audience", required=True, help="The service the token is for.")
@click.option("--ttl", type=float, default=None, help="Lifetime in seconds.")
@click.option(
    "--bind",
    "bind_cert",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Bind the token to this certificate (PEM), as gateways require for "
    "workloads: use the cert.pem written by `trustproof cert`.",
)
@run_dir_option
@friendly
def token(
    name: str, audience: str, ttl: float | None, bind_cert: Path | None, run_dir: Path
) -> None:
    """Print a fresh access token for a persona or workload of the running sandbox."""
    socket_path = RunDir(run_dir.absolute()).control_socket
    body: dict[str, object] = {"name": name, "audience": audience, "ttl": ttl}
    if bind_cert is not None:
        body["cnf_x5t_s256"] = thumbprint_of_pem(bind_cert.read_bytes())
    reply = control_request(socket_path, "POST", "/token", body)
    click.echo(reply["access_token"])


class _CertCommands(click.Group):
    """`cert NAME --out DIR` issues (the `issue` subcommand, implied); `cert revoke` revokes."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["issue", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_CertCommands)
def cert() -> None:
    """Certificates of the running sandbox: `cert NAME --out DIR` writes a fresh one;
    `cert revoke NAME` or `cert revoke --serial HEX` revokes one."""


@cert.command("issue")
@click.argument("name")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@run_dir_option
@friendly
def cert_issue(name: str, out_dir: Path, run_dir: Path) -> None:
    """Write a fresh certificate, key (0600) and CA bundle for NAME into --out."""
    socket_path = RunDir(run_dir.absolute()).control_socket
    reply = control_request(socket_path, "POST", "/cert", {"name": name})
    private_dir(out_dir)
    (out_dir / "cert.pem").write_text(reply["cert_pem"])
    (out_dir / "bundle.pem").write_text(reply["bundle_pem"])
    key = out_dir / "key.pem"
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(reply["key_pem"])
    click.echo(
        f"wrote {out_dir}/cert.pem, key.pem, bundle.pem for {reply['spiffe_id']} "
        f"(serial {reply['serial']}, valid until {reply['not_after']})"
    )


@cert.command("revoke")
@click.argument("name", required=False)
@click.option("--serial", help="Revoke the certificate with this serial (hex, as `cert` prints).")
@run_dir_option
@friendly
def cert_revoke(name: str | None, serial: str | None, run_dir: Path) -> None:
    """Revoke workload NAME's current certificate (it is renewed at once) or the one with
    --serial: the CA's CRL is rewritten for every service and services with `reload:` are
    told; trustproof's gateways refuse it at once."""
    if (name is None) == (serial is None):
        raise click.UsageError("give either NAME or --serial, not both and not neither")
    socket_path = RunDir(run_dir.absolute()).control_socket
    body = {"name": name} if name is not None else {"serial": serial}
    reply = control_request(socket_path, "POST", "/revoke", body)
    told = ", ".join(reply["reloaded"]) or "none"
    renewed = f"; {reply['renewed']} renewed" if reply.get("renewed") else ""
    click.echo(
        f"revoked serial {', '.join(reply['serials'])}; services told to reload: {told}{renewed}"
    )


def thumbprint_of_pem(pem: bytes) -> str:
    """The RFC 8705 thumbprint of the first certificate in a PEM file."""
    from cryptography import x509  # noqa: PLC0415 (only `--bind` needs it: see the docstring)
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415

    from trustproof.identity import x5t_s256  # noqa: PLC0415

    try:
        certificate = x509.load_pem_x509_certificates(pem)[0]
    except (ValueError, IndexError):
        raise click.BadParameter("expected a PEM certificate", param_hint="--bind") from None
    return x5t_s256(certificate.public_bytes(serialization.Encoding.DER))


def _print_state(state: dict[str, Any]) -> None:
    from rich.table import Table  # noqa: PLC0415 (only `status` draws one: token/cert start faster)

    table = Table("name", "kind", "url", "direct / dsn", "pid", "health", box=None)
    for name, ep in state.get("endpoints", {}).items():
        pid = str(ep.get("pid") or "")
        if "running" in ep and ep.get("pid"):
            pid += "" if ep["running"] else " (exited)"
        health = {True: "[green]healthy[/]", False: "[red]failing[/]"}.get(ep.get("healthy"), "")
        table.add_row(
            name, ep["kind"], ep["url"], ep.get("direct_url") or ep.get("dsn", ""), pid, health
        )
    out.print(table)
    for name, ep in state.get("endpoints", {}).items():  # each service's way to a dependency
        if ep.get("kind") == "dependency":
            for caller, url in sorted(ep.get("dependencies", {}).items()):
                out.print(f"{caller} → {name}: egress proxy {url}", markup=False)
    out.print(f"discovery: {state.get('discovery_url')}")
    out.print(f"CA bundle: {state.get('ca_bundle')}")
    out.print(f"run dir:   {state.get('run_dir')}")


COMMANDS: tuple[click.Command, ...] = (status, token, cert)
