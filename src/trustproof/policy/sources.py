"""The spec's Cedar policies and schema, read once into cedarpy handles, every problem located.

`load_policies(spec)` never raises for a user mistake: it returns a `PolicyBundle` whose
`problems` say what is wrong, as `FILE:LINE:COL` (see `trustproof.errors.Problem`):

* the schema (`policies.schema`, or the built-in one when the spec names none) must parse, and
  must accept the entities trustproof builds (`entities.Directory`);
* each policy file is split into single policies (`lexer`), each parsed on its own: a syntax
  error is reported at the token where the parser gave up;
* each policy is validated against the schema; an error is reported at the fragment Cedar quotes
  (an unknown action, entity type or attribute) when it can be found, else where the policy
  starts;
* templates (``?principal``) are refused, and so are two policies with the same ``@id`` (reports
  name policies by it).

Each policy gets a stable Cedar id, ``<file as written in the spec>:<line>``, which is what a
decision names when the policy has no ``@id``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trustproof.errors import Problem
from trustproof.policy.cedar_import import cedarpy
from trustproof.policy.entities import BUILTIN_SCHEMA_NAME, Directory, builtin_schema_text
from trustproof.policy.lexer import Piece, first_failure, position, quoted, split_policies

if TYPE_CHECKING:  # the spec package's loader imports this package
    from trustproof.spec.model import Spec

END_OF_INPUT = "unexpected end of input"
SYNTAX_DOCS = "https://docs.cedarpolicy.com/policies/syntax-policy.html"
_POLICY_PREFIX = re.compile(r"^for policy `[^`]*`, ")
_PER_ACTION = re.compile(r' for Action::"[^"]*"')
_NO_ACTION = "unable to find an applicable action given the policy scope constraints"


@dataclass(frozen=True)
class PolicySource:
    """One policy, where it came from, and how decisions name it."""

    policy_id: str  # Cedar's id for it: "policies/shop.cedar:12"
    annotation: str | None  # the value of its @id("...") annotation
    file: str  # the file as shown in problems
    path: str  # "policies.files[0]"
    line: int
    column: int
    text: str
    est: Any  # the policy in Cedar's JSON form, as cedarpy parsed it

    @property
    def label(self) -> str:
        """The name reports use: the ``@id``, else the Cedar id (file:line)."""
        return self.annotation or self.policy_id


@dataclass(frozen=True)
class PolicyBundle:
    """The policies and the schema, parsed; `policy_set` is None when there are problems."""

    policies: tuple[PolicySource, ...]
    schema: cedarpy.Schema | None
    schema_name: str
    policy_set: cedarpy.PolicySet | None
    problems: tuple[Problem, ...]

    def by_id(self) -> dict[str, PolicySource]:
        return {source.policy_id: source for source in self.policies}


def shown(path: Path) -> str:
    """A path as problems show it: relative to the working directory when inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def load_policies(spec: Spec) -> PolicyBundle:
    """The spec's policies and schema, parsed and validated (see the module's docstring).

    The same texts for the same entities give the same bundle: the last few are remembered,
    keyed by the files' contents (not their times), so `load_spec` and an engine built right
    after it parse and validate the policies once. A changed file is a new key.
    """
    problems: list[Problem] = []
    schema_text: str | None = None
    if spec.policies.schema is not None:
        schema_text = _read(
            spec.resolve(spec.policies.schema), "policies.schema", "Cedar schema", problems
        )
    texts = [
        _read(spec.resolve(relative), f"policies.files[{index}]", "policy file", problems)
        for index, relative in enumerate(spec.policies.files)
    ]
    if problems:  # an unreadable file: nothing to remember
        return _load(spec, schema_text, texts, problems)
    key = (
        str(Path.cwd()),
        str(spec.path),
        spec.policies.schema,
        schema_text,
        tuple(zip(spec.policies.files, texts, strict=True)),
        json.dumps(Directory.from_spec(spec).entities()),
    )
    found = _REMEMBERED.get(key)
    if found is None:
        found = _load(spec, schema_text, texts, problems)
        if len(_REMEMBERED) >= _REMEMBER:
            _REMEMBERED.pop(next(iter(_REMEMBERED)))
        _REMEMBERED[key] = found
    return found


_REMEMBER = 4
_REMEMBERED: dict[tuple[object, ...], PolicyBundle] = {}


def forget_policies() -> None:
    """Drop the remembered bundles: the next load reads, parses and validates again (for timing
    that; a changed file is a new key anyway)."""
    _REMEMBERED.clear()


def _load(
    spec: Spec, schema_text: str | None, texts: list[str | None], problems: list[Problem]
) -> PolicyBundle:
    schema, schema_name = _load_schema(spec, schema_text, problems)
    sources: list[PolicySource] = []
    for index, (relative, text) in enumerate(zip(spec.policies.files, texts, strict=True)):
        if text is not None:
            sources += _load_file(spec, index, relative, text, problems)
    _check_unique_ids(sources, problems)
    if schema is not None:
        problems += _validate_all(sources, schema, schema_name)
        try:
            Directory.from_spec(spec).handle(schema)
        except ValueError as exc:
            problems.append(_schema_problem(spec, 0, 0, str(exc), _ENTITY_HINT))
    policy_set = None
    if not problems:
        document = {
            "staticPolicies": {source.policy_id: source.est for source in sources},
            "templates": {},
            "templateLinks": [],
        }
        policy_set = cedarpy.PolicySet.from_json_str(json.dumps(document))
    return PolicyBundle(tuple(sources), schema, schema_name, policy_set, tuple(problems))


def _validate_all(
    sources: list[PolicySource], schema: cedarpy.Schema, schema_name: str
) -> list[Problem]:
    """Problems of every policy against the schema. One validation of the whole set first (one
    call instead of one per policy); only when it finds something is each policy validated on its
    own, to say where."""
    if not sources:
        return []
    if cedarpy.validate_policies("\n".join(s.text for s in sources), schema).validation_passed:
        return []
    return [problem for source in sources for problem in _validate(source, schema, schema_name)]


_ENTITY_HINT = (
    "the schema must declare the entities trustproof builds: Role; Persona in [Role] "
    "{ kind: String }; Workload in [Role]; Service; Route in [Service] (see the built-in schema "
    "in the trustproof.policy package)"
)


def _schema_problem(spec: Spec, line: int, column: int, message: str, hint: str) -> Problem:
    file = shown(spec.resolve(spec.policies.schema)) if spec.policies.schema else "<built-in>"
    return Problem(file, line, column, "policies.schema", message, hint)


def _load_schema(
    spec: Spec, text: str | None, problems: list[Problem]
) -> tuple[cedarpy.Schema | None, str]:
    if spec.policies.schema is None:
        return cedarpy.Schema.from_str(builtin_schema_text()), BUILTIN_SCHEMA_NAME
    relative = spec.policies.schema
    if text is None:
        return None, relative
    try:
        return cedarpy.Schema.from_str(text), relative
    except ValueError as exc:
        message = str(exc)
        line, column = _locate_schema_error(text, message)
        problems.append(
            _schema_problem(
                spec,
                line,
                column,
                f"Cedar schema error: {message}",
                "see https://docs.cedarpolicy.com/schema/human-readable-schema.html",
            )
        )
        return None, relative


def _locate_schema_error(text: str, message: str) -> tuple[int, int]:
    def fails(prefix: str) -> bool:
        try:
            cedarpy.Schema.from_str(prefix)
        except ValueError as exc:
            problem = str(exc)
            return problem.startswith("error parsing schema:") and END_OF_INPUT not in problem
        return False

    tokens = tuple(t for piece in split_policies(text) for t in piece.tokens)
    if message.startswith("error parsing schema:") and END_OF_INPUT not in message:
        index = first_failure(text, tokens, fails, message)
        if index >= 0:
            return position(text, tokens[index].start)
    for fragment in [*quoted(message), message.rpartition(": ")[2]]:
        for token in tokens:
            if token.text == fragment:
                return position(text, token.start)
    return (0, 0)


def _read(path: Path, field: str, what: str, problems: list[Problem]) -> str | None:
    """The file's text; only a regular file, at most `LIMITS.file_bytes` (see `spec.files`)."""
    # Imported here: importing the spec package imports this one (for check_policies).
    from trustproof.spec.files import FileRefusal, read_bounded  # noqa: PLC0415

    try:
        return read_bounded(path).decode("utf-8")
    except UnicodeDecodeError as exc:
        problems.append(
            Problem(shown(path), 0, 0, field, f"the {what} is not UTF-8 text (byte {exc.start})")
        )
    except FileRefusal as exc:
        problems.append(
            Problem(shown(path), 0, 0, field, f"cannot read the {what}: {exc.message}", exc.hint)
        )
    return None


def _load_file(
    spec: Spec, index: int, relative: str, text: str, problems: list[Problem]
) -> list[PolicySource]:
    field = f"policies.files[{index}]"
    file = shown(spec.resolve(relative))
    sources: list[PolicySource] = []
    taken: set[str] = set()
    line, column, counted = 1, 1, 0  # position() of each piece, counted on from the last one
    pieces = split_policies(text)
    parsed = _parse_whole(text, len(pieces))
    for number, piece in enumerate(pieces):
        piece_text = text[piece.start : piece.end]
        newlines = text.count("\n", counted, piece.start)
        if newlines:
            line += newlines
        column = piece.start - (text.rfind("\n", 0, piece.start) + 1) + 1
        counted = piece.start
        try:
            document = parsed[number] if parsed else _parse(piece_text)
        except ValueError as exc:
            problems.append(_syntax_problem(text, piece, str(exc), file, field))
            continue
        static = document.get("staticPolicies") or {}
        if document.get("templates") or len(static) != 1:
            problems.append(
                Problem(
                    file,
                    line,
                    column,
                    field,
                    "policy templates (?principal, ?resource) are not supported: the gateways "
                    "enforce static policies",
                    'name the entity instead, e.g. principal == Persona::"alice"',
                )
            )
            continue
        (est,) = static.values()
        annotation = (est.get("annotations") or {}).get("id")
        policy_id = f"{relative}:{line}"
        if policy_id in taken:
            policy_id = f"{relative}:{line}:{column}"
        taken.add(policy_id)
        sources.append(
            PolicySource(policy_id, annotation, file, field, line, column, piece_text, est)
        )
    return sources


def _parse(text: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(cedarpy.policies_to_json_str(text))
    return document


def _parse_whole(text: str, count: int) -> list[dict[str, Any]] | None:
    """Each piece's document from one parse of the whole file (one call to Cedar, not one per
    policy), when the file parses into exactly `count` static policies; else None (then each
    piece is parsed on its own, which also locates the problems)."""
    try:
        document = _parse(text)
    except ValueError:
        return None
    static = document.get("staticPolicies") or {}
    ids = [f"policy{n}" for n in range(count)]
    if document.get("templates") or len(static) != count or any(i not in static for i in ids):
        return None
    return [
        {"staticPolicies": {"policy0": static[i]}, "templates": {}, "templateLinks": []}
        for i in ids
    ]


def _syntax_problem(text: str, piece: Piece, message: str, file: str, field: str) -> Problem:
    def fails(prefix: str) -> bool:
        try:
            cedarpy.PolicySet.from_str(prefix)
        except ValueError as exc:
            return END_OF_INPUT not in str(exc)
        return False

    if END_OF_INPUT in message:
        line, column = position(text, piece.end)
        hint = "end every policy with ';', and close every bracket and string"
    else:
        index = first_failure(text, piece.tokens, fails, message)
        at_end = piece.terminated and index == len(piece.tokens) - 1
        if index >= 0 and not (at_end and ";" not in quoted(message)):
            line, column = position(text, piece.tokens[index].start)
        else:  # accepted by the grammar, refused afterwards (a bad escape, an unknown function)
            line, column = position(text, _pinpoint(text, piece, message))
        hint = _syntax_hint(message)
    return Problem(file, line, column, field, f"Cedar syntax error: {message}", hint)


def _syntax_hint(message: str) -> str:
    if "unexpected token" in message:
        return (
            "check the text just before this point (a missing ';' after the previous policy, or "
            "a missing comma or bracket); a policy reads: permit (principal, action, resource) "
            "when { ... };"
        )
    if "invalid token" in message:
        return "Cedar strings use double quotes, and comments are // only"
    return f"see {SYNTAX_DOCS}"


def _pinpoint(text: str, piece: Piece, message: str) -> int:
    """Where in the policy the fragment an error message quotes is, else the policy's start.

    A fragment starting a token wins (an action, an entity type, an attribute); then one inside a
    token (a bad escape inside a string); never one inside a comment.
    """
    found: list[int] = []
    for fragment in quoted(message):
        offset = text.find(fragment, piece.start, piece.end)
        while offset >= 0:
            found.append(offset)
            offset = text.find(fragment, offset + 1, piece.end)
    starts = {token.start for token in piece.tokens}
    for offset in found:
        if offset in starts:
            return offset
    for offset in found:
        if any(token.start <= offset < token.end for token in piece.tokens):
            return offset
    return piece.start


def _validate(source: PolicySource, schema: cedarpy.Schema, schema_name: str) -> list[Problem]:
    result = cedarpy.validate_policies(source.text, schema)
    messages = list(
        dict.fromkeys(
            _PER_ACTION.sub("", _POLICY_PREFIX.sub("", error.error)) for error in result.errors
        )
    )
    if len(messages) > 1 and _NO_ACTION in messages:
        messages.remove(_NO_ACTION)  # a consequence of the errors beside it
    name = f'policy "{source.annotation}"' if source.annotation else "this policy"
    problems: list[Problem] = []
    if not messages:
        return problems
    piece = split_policies(source.text)[0]
    for message in messages:
        offset = _pinpoint(source.text, piece, message)
        line, column = position(source.text, offset)
        problems.append(
            Problem(
                source.file,
                source.line + line - 1,
                column + (source.column - 1 if line == 1 else 0),
                source.path,
                f"{name} does not validate against the schema: {message}",
                _validation_hint(message, schema_name),
            )
        )
    return problems


def _validation_hint(message: str, schema_name: str) -> str:
    if "unrecognized action" in message:
        return f'actions are the HTTP methods declared in {schema_name}, e.g. Action::"GET"'
    if "unrecognized entity type" in message:
        return (
            f"entity types are declared in {schema_name}: trustproof builds Role, Persona, "
            "Workload, Service and Route"
        )
    if "not found" in message and "attribute" in message:
        return (
            f"attributes are declared in {schema_name}; the context has client_cert, "
            "source_ip, token_roles and hour_utc, a Persona has kind"
        )
    if message == _NO_ACTION:
        return (
            "no action applies to this scope: principals are Persona or Workload (or their "
            "Role), resources are Route (or their Service)"
        )
    return f"policies are checked against {schema_name}"


def _check_unique_ids(sources: list[PolicySource], problems: list[Problem]) -> None:
    first: dict[str, PolicySource] = {}
    for source in sources:
        if source.annotation is None:
            continue
        earlier = first.setdefault(source.annotation, source)
        if earlier is not source:
            problems.append(
                Problem(
                    source.file,
                    source.line,
                    source.column,
                    source.path,
                    f'duplicate @id("{source.annotation}"): also at {earlier.file}:{earlier.line}',
                    "reports name policies by their @id; give each policy its own",
                )
            )
