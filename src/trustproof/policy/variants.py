"""A spec's policy set with one file replaced or one more file added, loaded exactly as the real
files are (`load_policies`: parse, schema validation, the same problems): what the trust-chaos
experiments offer the hot reload (a corrupted policy) and enforce for a while (a policy whose
evaluation fails).

The text is written to a temporary directory, read, and the directory removed before returning;
the spec's own files are read where they are and never written.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

from trustproof.policy.sources import PolicyBundle, load_policies
from trustproof.spec.model import Spec
from trustproof.spec.values import RelPath


def variant_bundle(
    spec: Spec, *, first: str | None = None, extra: str | None = None
) -> PolicyBundle:
    """The spec's policies with the first file's text replaced by `first` (when given) and a file
    holding `extra` added (when given), against the spec's schema."""
    originals = [str(spec.resolve(relative)) for relative in spec.policies.files]
    schema = spec.policies.schema
    with tempfile.TemporaryDirectory(prefix="trustproof-policy-") as directory:
        files = list(originals)
        if first is not None:
            replaced = Path(directory) / "replaced.cedar"
            replaced.write_text(first)
            files[:1] = [str(replaced)]
        if extra is not None:
            added = Path(directory) / "added.cedar"
            added.write_text(extra)
            files.append(str(added))
        policies = replace(
            spec.policies,
            files=tuple(RelPath(f) for f in files),
            schema=RelPath(str(spec.resolve(schema))) if schema else None,
        )
        return load_policies(replace(spec, policies=policies))
