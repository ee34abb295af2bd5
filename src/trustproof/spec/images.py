"""What a service runs: exactly one of ``command`` (a process) and ``image`` (a container), and
the keys that belong to one of them only. Returns problems for `crossref` to place."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import NamedTuple

from trustproof.spec.model import Spec
from trustproof.spec.wording import Path as FieldPath

IMAGE_REFERENCE = re.compile(
    r"[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?"
)
"""A Docker image reference: ``[registry[:port]/]path[:tag][@sha256:digest]`` (lower-case path)."""


class ImageProblem(NamedTuple):
    path: FieldPath
    message: str
    hint: str
    key: bool = False


def image_problems(spec: Spec) -> Iterator[ImageProblem]:
    for name, service in spec.services.items():
        base: FieldPath = ("services", name)
        if service.image is None:
            if not service.command:
                yield ImageProblem(
                    base,
                    f"service {name!r} has neither command nor image",
                    "add command: [...] (a process) or image: NAME[:TAG] (a container)",
                    key=True,
                )
            if service.args is not None:
                yield ImageProblem(
                    (*base, "args"),
                    "args applies only to services with an image",
                    "put the arguments in command: [...]",
                    key=True,
                )
            continue
        if service.command:
            yield ImageProblem(
                (*base, "image"),
                f"service {name!r} has both command and image",
                "keep one: command runs a process, image runs a container (its command "
                "arguments go in args:)",
                key=True,
            )
        if len(service.image) > 255 or not IMAGE_REFERENCE.fullmatch(service.image):
            yield ImageProblem(
                (*base, "image"),
                f"{service.image[:80]!r} is not an image reference",
                "write registry/path:tag, e.g. localhost/orders:1.4 (the path in lower case)",
            )
        if service.cwd is not None:
            yield ImageProblem(
                (*base, "cwd"),
                "cwd applies only to services with a command",
                "an image's working directory is its own (WORKDIR); remove cwd",
                key=True,
            )
