"""Hostile specs: every one is a clear `FILE:LINE:COL: path: message` + hint and exit 2 from
`trustproof validate`, never an internal error (exit 70), a hang or gigabytes of memory.

The reproductions of issue 10 (items 3 and 4) are here one by one; each failed before the limits
(`trustproof.spec.limits`) existed.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from trustproof.cli import cli
from trustproof.errors import SpecError
from trustproof.spec import load_spec, parse_spec
from trustproof.spec.files import ALLOW_ENV, FileRefusal, read_bounded
from trustproof.spec.limits import LIMITS

SHOP = Path(__file__).resolve().parents[2] / "examples" / "shop"


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """A copy of the shop; returns its spec file."""
    target = tmp_path / "shop"
    skip = shutil.ignore_patterns("trustproof-reports", "__pycache__")
    shutil.copytree(SHOP, target, ignore=skip)
    return target / "trustproof.yaml"


def edit(spec: Path, old: str, new: str) -> Path:
    text = spec.read_text(encoding="utf-8")
    assert old in text
    spec.write_text(text.replace(old, new, 1), encoding="utf-8")
    return spec


def validate(spec: Path | str) -> Result:
    return CliRunner().invoke(cli, ["validate", str(spec)])


def refused(result: Result, *fragments: str) -> str:
    """Exit 2, every fragment in the output, a hint, and no internal error."""
    output = result.output + (result.stderr or "")
    assert result.exit_code == 2, output
    assert "internal error" not in output, output
    assert "Traceback" not in output, output
    for fragment in fragments:
        assert fragment in output, output
    assert "hint: " in output, output
    return output


# -- item 3: crashes --------------------------------------------------------------------------


def test_nesting_500_deep_is_refused_at_the_level_that_crosses_the_limit(tmp_path: Path) -> None:
    spec = tmp_path / "trustproof.yaml"
    spec.write_text("trust_domain: a.test\npersonas: " + "[" * 500 + "]" * 500 + "\n")
    refused(validate(spec), f"{spec}:2:74: nested more than 64 levels deep")


def test_block_nesting_is_bounded_too(tmp_path: Path) -> None:
    spec = tmp_path / "trustproof.yaml"
    lines = ["trust_domain: a.test", "personas:"]
    lines += [" " * (2 * depth) + f"k{depth}:" for depth in range(1, 200)]
    spec.write_text("\n".join(lines) + " x\n")
    refused(validate(spec), "nested more than 64 levels deep")


@pytest.mark.parametrize("tag", ["int", "float", "bool", "timestamp"])
def test_an_explicit_tag_on_a_value_that_does_not_fit_it_is_a_clear_error(
    shop: Path, tag: str
) -> None:
    edit(shop, "trust_domain: shop.test", f'trust_domain: !!{tag} "x"')
    refused(validate(shop), f"{shop}:9:15: trust_domain: cannot read 'x' as {tag}", f"!!{tag}")


def test_an_implicit_timestamp_that_is_no_date_is_a_clear_error(shop: Path) -> None:
    edit(shop, "description: A signed-in customer who buys things.", "description: 2001-13-45")
    refused(validate(shop), "personas.alice.description: cannot read '2001-13-45' as timestamp")


def test_a_5000_digit_port_is_refused_for_its_digits(shop: Path) -> None:
    edit(shop, "port: 18101", "port: " + "9" * 5000)
    refused(
        validate(shop),
        f"{shop}:30:11: services.storefront.port: a number with 5,000 digits (at most 30 allowed)",
    )


def test_a_5000_character_spec_file_name_is_a_clear_error(tmp_path: Path) -> None:
    output = refused(validate(tmp_path / ("a" * 5000 + ".yaml")), "the path is too long")
    assert "a" * 300 not in output  # the name is shown cut to a readable length


def test_a_5000_character_referenced_file_name_is_a_clear_error(shop: Path) -> None:
    edit(shop, "schema: db/schema.sql", "schema: " + "a" * 5000)
    refused(
        validate(shop),
        "datastores.shopdb.schema: schema SQL file 'aaaaaaaaaa",
        "(5,000 characters): the path is too long",
    )


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_a_device_as_schema_is_refused_without_reading_it(shop: Path, device: str) -> None:
    edit(shop, "schema: db/schema.sql", f"schema: {device}")
    refused(
        validate(shop),
        f"datastores.shopdb.schema: schema SQL file {device!r} is outside the spec's directory",
        ALLOW_ENV,
    )


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_a_device_is_refused_even_in_an_allowed_directory(
    shop: Path, device: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ALLOW_ENV, "/dev")
    edit(shop, "schema: policies/shop.cedarschema", f"schema: {device}")
    refused(
        validate(shop),
        f"policies.schema: Cedar schema {device!r} is a character device ({device}), "
        "not a regular file",
    )


def test_a_device_as_the_spec_itself_is_refused() -> None:
    refused(
        validate("/dev/zero"),
        "/dev/zero:0:0: the spec file is a character device, not a regular file",
    )


def test_a_fifo_is_refused_without_blocking(shop: Path) -> None:
    os.mkfifo(shop.parent / "db" / "pipe.sql")
    edit(shop, "schema: db/schema.sql", "schema: db/pipe.sql")
    refused(validate(shop), "'db/pipe.sql' is a FIFO (named pipe)")
    with pytest.raises(FileRefusal, match="FIFO"):
        read_bounded(shop.parent / "db" / "pipe.sql")


def test_a_symlink_leaving_the_spec_directory_is_refused(shop: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.sql"
    outside.write_text("create table orders (id int);\n")
    (shop.parent / "db" / "link.sql").symlink_to(outside)
    edit(shop, "schema: db/schema.sql", "schema: db/link.sql")
    refused(validate(shop), "'db/link.sql' is outside the spec's directory (it resolves to")


def test_a_directory_listed_as_allowed_may_hold_referenced_files(
    shop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shutil.copy(shop.parent / "db" / "schema.sql", shared / "schema.sql")
    (shop.parent / "db" / "link.sql").symlink_to(shared / "schema.sql")
    edit(shop, "schema: db/schema.sql", "schema: db/link.sql")
    monkeypatch.setenv(ALLOW_ENV, f"{tmp_path / 'nothing'}:{shared}")
    assert load_spec(shop).datastores["shopdb"].schema == "db/link.sql"


def test_a_symlink_inside_the_spec_directory_is_fine(shop: Path) -> None:
    (shop.parent / "db" / "link.sql").symlink_to(shop.parent / "db" / "schema.sql")
    edit(shop, "schema: db/schema.sql", "schema: db/link.sql")
    assert load_spec(shop).datastores["shopdb"].schema == "db/link.sql"


def test_a_referenced_file_larger_than_the_bound_is_refused(shop: Path) -> None:
    with (shop.parent / "db" / "schema.sql").open("ab") as handle:
        handle.truncate(LIMITS.file_bytes + 1)  # sparse: no disk used
    refused(validate(shop), "schema SQL file 'db/schema.sql' is 16 MiB (at most 16 MiB is read)")


def test_read_bounded_never_reads_past_its_limit(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    assert read_bounded(path, 100) == b"x" * 100
    with pytest.raises(FileRefusal, match="at most 99 bytes"):
        read_bounded(path, 99)


# -- item 4: small files, huge costs -----------------------------------------------------------


def merge_bomb(levels: int) -> str:
    """Each level merges the previous one twice: 2**levels pairs once flattened naively."""
    lines = ["trust_domain: a.test", "x0: &x0 {a: 1, b: 2}"]
    for level in range(1, levels + 1):
        lines.append(f"x{level}: &x{level} {{<<: [*x{level - 1}, *x{level - 1}], k{level}: 1}}")
    return "\n".join(lines) + f"\npersonas: {{p: {{roles: [r], <<: *x{levels}}}}}\n"


def test_a_merge_key_bomb_is_refused_while_composing(tmp_path: Path) -> None:
    spec = tmp_path / "trustproof.yaml"
    spec.write_text(merge_bomb(40))  # before: 26 levels took 33 s and 2.2 GB; 40 never ended
    assert spec.stat().st_size < 4096
    refused(validate(spec), "aliases expand the spec to more than 1,000,000 values", "share less")


def test_a_list_alias_bomb_is_refused(tmp_path: Path) -> None:
    lines = ["trust_domain: a.test", "x0: &x0 [a, b, c, d, e, f, g, h, i, j]"]
    lines += [f"x{n}: &x{n} [{', '.join([f'*x{n - 1}'] * 10)}]" for n in range(1, 9)]
    lines.append("services: {s: {command: *x8, port: 1}}")
    spec = tmp_path / "trustproof.yaml"
    spec.write_text("\n".join(lines) + "\n")
    refused(validate(spec), "aliases expand the spec to more than 1,000,000 values")


def test_a_small_merge_chain_still_merges_and_unknown_keys_are_reported_once(
    tmp_path: Path,
) -> None:
    spec = tmp_path / "trustproof.yaml"
    spec.write_text(merge_bomb(12))
    with pytest.raises(SpecError) as info:
        load_spec(spec)
    unknown = [p for p in info.value.problems if "unknown key" in p.message]
    # the merged-in keys a, b, k1..k12 are unknown persona settings; x0..x12 unknown top keys
    assert sorted(p.path for p in unknown if p.path.startswith("personas")) == sorted(
        f"personas.p.{key}" for key in ["a", "b", *(f"k{n}" for n in range(1, 13))]
    )


def test_aliases_cannot_pile_up_nesting(tmp_path: Path) -> None:
    lines = ["trust_domain: a.test", "x0: &x0 [[[[a]]]]"]
    lines += [f"x{n}: &x{n} [[[[*x{n - 1}]]]]" for n in range(1, 20)]
    spec = tmp_path / "trustproof.yaml"
    spec.write_text("\n".join(lines) + "\n")
    refused(validate(spec), "the alias *x14 nests the document more than 64 levels deep")


def test_an_alias_inside_its_own_anchor_is_refused(tmp_path: Path) -> None:
    spec = tmp_path / "trustproof.yaml"
    spec.write_text("trust_domain: a.test\nservices: &s {s: {command: [x], port: 1, env: *s}}\n")
    refused(validate(spec), f"{spec}:2:47: the alias *s is inside the node &s it refers to")


def test_a_huge_scalar_is_refused(tmp_path: Path) -> None:
    spec = tmp_path / "trustproof.yaml"
    spec.write_text("trust_domain: a.test\npersonas: {p: {description: " + "x" * 70_000 + "}}\n")
    refused(validate(spec), f"{spec}:2:29: a value of 70,000 characters (at most 65,536 allowed)")


def test_a_spec_larger_than_the_bound_is_refused_before_parsing(tmp_path: Path) -> None:
    spec = tmp_path / "trustproof.yaml"
    with spec.open("w") as handle:
        handle.write("trust_domain: a.test\n" + ("# " + "x" * 78 + "\n") * 131_072)  # 10 MiB
    refused(validate(spec), f"{spec}:0:0: the spec file is 10.13 MiB (at most 4 MiB)")
    with pytest.raises(SpecError, match="at most 4 MiB"):
        parse_spec(spec.read_text(), spec)


def test_error_messages_show_huge_values_cut_short(tmp_path: Path) -> None:
    spec = tmp_path / "trustproof.yaml"
    spec.write_text("trust_domain: " + "X" * 60_000 + "\n")
    output = refused(validate(spec), "trust_domain: bad trust domain 'XXXX")
    assert len(output) < 2000


def test_a_second_document_and_duplicate_anchors_are_clear_errors(tmp_path: Path) -> None:
    spec = tmp_path / "trustproof.yaml"
    spec.write_text("trust_domain: a.test\n---\ntrust_domain: b.test\n")
    refused(validate(spec), f"{spec}:2:1: a second YAML document")
    spec.write_text("trust_domain: a.test\nx: &a 1\ny: &a 2\n")
    refused(validate(spec), f"{spec}:3:4: the anchor &a is defined twice")
    spec.write_text("trust_domain: a.test\nx: *nope\n")
    refused(validate(spec), f"{spec}:2:4: the alias *nope refers to no anchor defined before it")


def test_thousands_of_mistyped_routes_get_a_listing_instead_of_a_search(tmp_path: Path) -> None:
    # Before: each mistyped route ran difflib against every declared one (quadratic: minutes).
    routes = ", ".join(f"GET /r{i}" for i in range(1000))
    wrong = ", ".join(f"GET /x{i}" for i in range(1000))
    text = (
        "trust_domain: a.test\npersonas: {p: {}}\n"
        f"services: {{s: {{command: x, port: 1, routes: [{routes}]}}}}\n"
        f"access: {{services: {{s: {{p: [{wrong}]}}}}}}\n"
    )
    with pytest.raises(SpecError) as info:
        parse_spec(text, tmp_path / "trustproof.yaml")
    problems = info.value.problems
    assert len(problems) == 1000
    assert problems[0].message == "route 'GET /x0' is not declared by service 's'"
    assert problems[0].hint.startswith("expected one of: GET /r0, GET /r1, GET /r10, ")


def test_a_long_key_is_shown_cut_short_in_the_field_path(tmp_path: Path) -> None:
    spec = tmp_path / "trustproof.yaml"
    spec.write_text("trust_domain: a.test\npersonas:\n  ? " + "A" * 5000 + "\n  : {}\n")
    output = refused(validate(spec), f"{spec}:3:5: personas.{'A' * 60}...(5,000 characters): ")
    assert len(output) < 2000


def test_an_empty_value_tagged_as_a_number_is_a_clear_error(tmp_path: Path) -> None:
    spec = tmp_path / "trustproof.yaml"
    spec.write_text("trust_domain: a.test\n? !!int\n: x\n")  # found by the fuzzer (IndexError)
    refused(validate(spec), f"{spec}:2:3: keys must be strings, got ''")
