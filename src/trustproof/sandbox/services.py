"""What each service is given: its environment, its rendered config files, its start order.

The environment contract (the services read only these; names are stable):

======================================  =========================================================
``TRUSTPROOF_SERVICE``                  the service's name
``TRUSTPROOF_SPIFFE_ID``                its SPIFFE ID
``TRUSTPROOF_HOST``/``_PORT``           where to listen (plain HTTP behind the gateway; with
                                        ``gateway: none`` the service terminates mTLS there)
``TRUSTPROOF_CERT_FILE``                its X.509-SVID chain, key and the trust bundle,
``TRUSTPROOF_KEY_FILE``                 rotated in place
``TRUSTPROOF_BUNDLE_FILE``
``TRUSTPROOF_CRL_FILE``                 the CA's CRLs, one per CA in the bundle (nginx
                                        ``ssl_crl`` refuses every chain when one CA has
                                        none); rewritten at each rotation and whenever a
                                        certificate is revoked
``TRUSTPROOF_CERT_KEY_FILE``            certificate chain then key in one PEM (0600), as
                                        HAProxy's ``crt`` wants it; rewritten at each rotation
``TRUSTPROOF_ISSUER``                   the token service's issuer (``iss`` of its tokens;
                                        discovery at ``<issuer>/.well-known/openid-configuration``)
``TRUSTPROOF_TRUST_DOMAIN``             the SPIFFE trust domain
``TRUSTPROOF_AUDIENCE``                 this service's ``aud`` in the tokens minted for it (its
                                        SPIFFE ID)
``TRUSTPROOF_JWKS_FILE``                the token service's JWK Set (RFC 7517) as a file
``TRUSTPROOF_SIGNING_KEYS_FILE``        the same keys as PEM public keys, active key first
                                        (during a rotation's overlap, the active key and the
                                        retired one); both rewritten when the keys rotate or a
                                        retired key is pruned
``TRUSTPROOF_SIGNING_KEY_CURRENT_FILE``  the active key alone, and the most recently retired
(and ``..._SIGNING_KEY_PREVIOUS_FILE``)  key still verifying (else the active one again), one
                                        PEM public key each (HAProxy's ``jwt_verify`` takes one
                                        key per file: or two checks)
``TRUSTPROOF_EGRESS_<CALLEE>``          the egress proxy URL for each service it calls
``TRUSTPROOF_DEPENDENCY_<NAME>_URL``    its egress proxy for each external dependency it calls
                                        (plain HTTP on loopback; the proxy adds the
                                        credentials and reaches only the dependency)
``TRUSTPROOF_DB_<NAME>_DSN``            libpq settings for each datastore it has a role in
                                        (certificate authentication: never a password)
``TRUSTPROOF_TOKEN_URL``                the token endpoint (its egress proxies use it)
``TRUSTPROOF_GATEWAY_PROOF_KEY_FILE``   the key (32 raw bytes, 0600) its gateway signs
                                        ``X-Trustproof-Gateway-Proof`` with on every request
                                        it forwards: refuse requests without a valid one
                                        (``trustproof.gateway.proof.verify_proof``). Not
                                        set with ``gateway: none``
``TRUSTPROOF_CONFIG_DIR``               where its templates were rendered
``TRUSTPROOF_RUN_DIR``                  the run directory
======================================  =========================================================

The same values are the variables of the Jinja2 templates (``{{ cert_file }}``, ``{{ port }}``,
``{{ issuer }}``, ``{{ signing_keys_file }}``, ``{{ egress.orders }}``,
``{{ dependency.payments_api }}``, ...), for services that
read config files (nginx, HAProxy, ...).

Every file is rewritten atomically (write, then rename; `trustfiles`). After a change the
service is told the way its ``reload:`` says (SIGHUP or a restart), its templates rendered again
first: on its own SVID's rotation always; on a signing-key or CRL change when it validates tokens
itself (``gateway: none`` — behind a gateway, the gateway holds the keys and the CRL in memory).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import jinja2

from trustproof.errors import SandboxError
from trustproof.identity import CertificateAuthority, Rotator, Svid
from trustproof.sandbox.backend import ProcessSpec
from trustproof.sandbox.rundir import RunDir
from trustproof.sandbox.trustfiles import (
    CERT_KEY_FILE,
    CRL_FILE,
    JWKS_FILE,
    SIGNING_KEY_CURRENT_FILE,
    SIGNING_KEY_PREVIOUS_FILE,
    SIGNING_KEYS_FILE,
)
from trustproof.spec.model import Spec

PASSED_THROUGH = ("HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "USER", "LOGNAME")


class DsnSource(Protocol):
    def dsns_for(self, workload: str, cert: Path, key: Path, bundle: Path) -> Mapping[str, str]: ...


def env_suffix(name: str) -> str:
    """`order-items.v2` -> `ORDER_ITEMS_V2`."""
    return re.sub(r"[^A-Z0-9]", "_", name.upper())


def service_env(
    spec: Spec,
    name: str,
    run: RunDir,
    rotator: Rotator,
    *,
    token_url: str,
    egress: Mapping[str, str],
    datastores: DsnSource,
    proof_key_file: Path | None = None,
    issuer: str | None = None,
    dependencies: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The service's environment (the table above); renders its templates with the same values.

    `issuer` defaults to `token_url` without ``/token`` (the token service serves both)."""
    service = spec.services[name]
    files = rotator.files
    env = {key: os.environ[key] for key in PASSED_THROUGH if key in os.environ}
    # The interpreter running trustproof comes first, so `python` in a command is the same one.
    env["PATH"] = os.pathsep.join(
        [str(Path(sys.executable).parent), os.environ.get("PATH", "/usr/bin:/bin")]
    )
    env.update(
        {
            "TRUSTPROOF_SERVICE": name,
            "TRUSTPROOF_SPIFFE_ID": spec.spiffe_id(name),
            "TRUSTPROOF_HOST": service.host,
            "TRUSTPROOF_PORT": str(service.port),
            "TRUSTPROOF_CERT_FILE": str(files.cert),
            "TRUSTPROOF_KEY_FILE": str(files.key),
            "TRUSTPROOF_BUNDLE_FILE": str(files.bundle),
            "TRUSTPROOF_CRL_FILE": str(files.directory / CRL_FILE),
            "TRUSTPROOF_CERT_KEY_FILE": str(files.directory / CERT_KEY_FILE),
            "TRUSTPROOF_ISSUER": issuer if issuer is not None else token_url.removesuffix("/token"),
            "TRUSTPROOF_TRUST_DOMAIN": spec.trust_domain,
            "TRUSTPROOF_AUDIENCE": spec.spiffe_id(name),
            "TRUSTPROOF_JWKS_FILE": str(files.directory / JWKS_FILE),
            "TRUSTPROOF_SIGNING_KEYS_FILE": str(files.directory / SIGNING_KEYS_FILE),
            "TRUSTPROOF_SIGNING_KEY_CURRENT_FILE": str(files.directory / SIGNING_KEY_CURRENT_FILE),
            "TRUSTPROOF_SIGNING_KEY_PREVIOUS_FILE": str(
                files.directory / SIGNING_KEY_PREVIOUS_FILE
            ),
            "TRUSTPROOF_TOKEN_URL": token_url,
            "TRUSTPROOF_RUN_DIR": str(run.path),
            "PYTHONUNBUFFERED": "1",
        }
    )
    for callee, url in egress.items():
        env[f"TRUSTPROOF_EGRESS_{env_suffix(callee)}"] = url
    for dependency, url in (dependencies or {}).items():
        env[f"TRUSTPROOF_DEPENDENCY_{env_suffix(dependency)}_URL"] = url
    for store, dsn in datastores.dsns_for(name, files.cert, files.key, files.bundle).items():
        env[f"TRUSTPROOF_DB_{env_suffix(store)}_DSN"] = dsn
    if proof_key_file is not None:
        env["TRUSTPROOF_GATEWAY_PROOF_KEY_FILE"] = str(proof_key_file)
    if service.templates:
        env["TRUSTPROOF_CONFIG_DIR"] = str(run.rendered(name))
    env.update(service.env)
    render_templates(spec, name, run, env)
    return env


def write_crl(ca: CertificateAuthority, directory: Path, _: Svid | None = None) -> None:
    """Write the CA's current CRLs as ``crl.pem`` next to a workload's SVID files (atomically:
    a server reloading at that moment reads the old file or the new one).

    Called at start and as a rotation subscriber (registered before the service's reload, so a
    reloading server reads the fresh file); the CRLs are not secret.
    """
    path = directory / CRL_FILE
    temporary = path.with_name(f".{CRL_FILE}.tmp")
    temporary.write_bytes(ca.crl_pem())
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)


def template_values(env: Mapping[str, str]) -> dict[str, Any]:
    """The template variables: each TRUSTPROOF_* setting in lower case without the prefix."""
    values: dict[str, Any] = {"env": dict(env), "egress": {}, "db": {}, "dependency": {}}
    for key, value in env.items():
        if key.startswith("TRUSTPROOF_EGRESS_"):
            values["egress"][key.removeprefix("TRUSTPROOF_EGRESS_").lower()] = value
        elif key.startswith("TRUSTPROOF_DEPENDENCY_") and key.endswith("_URL"):
            name = key.removeprefix("TRUSTPROOF_DEPENDENCY_").removesuffix("_URL").lower()
            values["dependency"][name] = value
        elif key.startswith("TRUSTPROOF_DB_") and key.endswith("_DSN"):
            values["db"][key.removeprefix("TRUSTPROOF_DB_").removesuffix("_DSN").lower()] = value
        elif key.startswith("TRUSTPROOF_"):
            values[key.removeprefix("TRUSTPROOF_").lower()] = value
    return values


def render_templates(spec: Spec, name: str, run: RunDir, env: Mapping[str, str]) -> None:
    service = spec.services[name]
    if not service.templates:
        return
    target_dir = run.rendered(name)
    values = template_values(env)
    for template in service.templates:
        source = spec.resolve(template.src)
        loader = jinja2.FileSystemLoader(str(source.parent))
        jinja = jinja2.Environment(
            loader=loader,
            undefined=jinja2.StrictUndefined,
            autoescape=False,  # noqa: S701 (config files, not HTML)
            keep_trailing_newline=True,
        )
        try:
            text = jinja.get_template(source.name).render(values)
        except jinja2.TemplateError as exc:
            line = getattr(exc, "lineno", None)
            where = f"{source}:{line}" if line else str(source)
            raise SandboxError(
                f"{where}: cannot render the template of {name!r}: {exc}",
                "template variables: " + ", ".join(sorted(values)),
            ) from None
        target = (target_dir / template.dest).resolve()
        if not target.is_relative_to(target_dir):
            raise SandboxError(
                f"template destination {template.dest!r} of {name!r} leaves the "
                "service's config directory"
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


def service_process(spec: Spec, name: str, run: RunDir, env: Mapping[str, str]) -> ProcessSpec:
    """What to run: its command, or (``image:``) its image with ``args`` as the container's
    command and the directories its environment names mounted read-only (its identity
    directory; its rendered templates)."""
    service = spec.services[name]
    cwd = spec.resolve(service.cwd) if service.cwd else spec.base_dir
    if service.image is not None:
        mounts = [run.identity(name)]
        if service.templates:
            mounts.append(run.rendered(name))
        argv = tuple(service.args or ())
        return ProcessSpec(
            name, argv, cwd, env, run.service_log(name), image=service.image, mounts=tuple(mounts)
        )
    return ProcessSpec(name, tuple(service.command), cwd, env, run.service_log(name))


def start_order(spec: Spec) -> list[list[str]]:
    """Services in levels: each level only calls services of earlier levels (callees first).

    A cycle of calls is allowed (services retry); its members start together in one level.
    """
    remaining = dict(spec.services)
    levels: list[list[str]] = []
    started: set[str] = set()
    while remaining:
        level = [
            name
            for name, service in remaining.items()
            if all(callee in started or callee not in spec.services for callee in service.calls)
        ]
        if not level:  # a cycle: start the rest together
            level = list(remaining)
        levels.append(level)
        for name in level:
            started.add(name)
            del remaining[name]
    return levels
