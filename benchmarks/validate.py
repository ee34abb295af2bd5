"""Spec validation cost against spec size: `load_spec` at 1x, 4x and 16x the routes and personas.

Each size is written to a temporary directory and measured in a fresh child process (so peak
memory is that size's alone), next to the reference measured the same way in the same run:

* reference   `yaml.compose` of the same file with PyYAML's libyaml loader: reading the YAML,
              nothing checked — the floor for any validator of this file
* validate    `trustproof.spec.load_spec` of the file: reading with limits, decoding, cross-checks
              (route overlaps included) and the Cedar schema/entity checks

`growth` is the validate time over the same series' 1x time: linear validation grows about 4x
and 16x. (The reference itself grows faster than linearly on large files: Python's cyclic garbage
collector keeps re-scanning the growing node tree, which `load_spec` avoids by pausing it.) A last
line times a 10 MB spec, which must be refused with a size error at once.

Run: `.venv/bin/python benchmarks/validate.py [--json FILE]`. Every child is bounded in time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

BASE_ROUTES = 1000
BASE_PERSONAS = 2000
SCALES = (1, 4, 16)
CHILD_TIMEOUT = 300.0

POLICY = """permit (principal in Role::"customer", action == Action::"GET",
        resource in Service::"api")
when { context.client_cert };
"""

# Runs in the child: measure one thing on one file, print wall seconds and peak RSS (KiB).
CHILD = """
import resource, sys, time
what, path = sys.argv[1], sys.argv[2]
if what == "reference":
    import yaml
    text = open(path, encoding="utf-8").read()
    start = time.perf_counter()
    yaml.compose(text, Loader=yaml.CSafeLoader)
else:
    from trustproof.errors import SpecError
    from trustproof.spec import load_spec
    start = time.perf_counter()
    try:
        load_spec(path)
        outcome = "valid"
    except SpecError as exc:
        outcome = exc.problems[0].message
    if what == "validate" and outcome != "valid":
        sys.exit("not valid: " + outcome)
    if what == "refuse" and "at most" not in outcome:
        sys.exit("not refused for its size: " + outcome)
elapsed = time.perf_counter() - start
print(elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def spec_text(routes: int, personas: int) -> str:
    """A valid spec with `routes` routes on one service and `personas` personas."""
    lines = ["version: 1", "trust_domain: bench.test", "personas:"]
    lines += [f"  p{i}: {{roles: [customer], description: persona {i}}}" for i in range(personas)]
    lines += [
        "services:",
        "  api:",
        "    command: [python, api.py]",
        "    port: 18900",
        "    routes:",
    ]
    for i in range(routes // 2):
        lines += [f"      - GET /r{i}/items/{{id}}", f"      - POST /r{i}/items"]
    lines += ["policies: {files: [app.cedar]}", "access:", "  services:", "    api:"]
    kinds = max(routes // 2, 1)
    lines += [f"      p{i}: ['GET /r{i % kinds}/items/{{id}}']" for i in range(personas)]
    return "\n".join(lines) + "\n"


def measure(what: str, path: Path) -> tuple[float, int]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, what, str(path)],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{what} of {path.name} failed: {done.stderr.strip()[-500:]}")
    seconds, kib = done.stdout.split()
    return float(seconds), int(kib)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    print(
        f"{'spec':<28}{'size':>9}{'reference s':>13}{'validate s':>12}{'ratio':>7}"
        f"{'growth':>8}{'ref MiB':>9}{'val MiB':>9}"
    )
    with tempfile.TemporaryDirectory(prefix="trustproof-bench-") as tmp:
        folder = Path(tmp)
        (folder / "app.cedar").write_text(POLICY, encoding="utf-8")
        cases = [(f"routes {BASE_ROUTES * s:,} ({s}x)", BASE_ROUTES * s, 10) for s in SCALES]
        cases += [(f"personas {BASE_PERSONAS * s:,} ({s}x)", 20, BASE_PERSONAS * s) for s in SCALES]
        first: dict[str, float] = {}
        for label, routes, personas in cases:
            path = folder / "trustproof.yaml"
            path.write_text(spec_text(routes, personas), encoding="utf-8")
            ref_s, ref_kib = measure("reference", path)
            val_s, val_kib = measure("validate", path)
            size = path.stat().st_size
            growth = val_s / first.setdefault(label.split()[0], val_s)
            print(
                f"{label:<28}{size / 1024:>7.0f}Ki{ref_s:>13.3f}{val_s:>12.3f}"
                f"{val_s / ref_s:>7.1f}{growth:>7.1f}x{ref_kib / 1024:>9.0f}{val_kib / 1024:>9.0f}"
            )
            rows.append(
                {
                    "case": label,
                    "bytes": size,
                    "reference_s": ref_s,
                    "validate_s": val_s,
                    "reference_peak_kib": ref_kib,
                    "validate_peak_kib": val_kib,
                }
            )
        big = folder / "big.yaml"
        with big.open("w", encoding="utf-8") as handle:
            handle.write(spec_text(0, 0))
            handle.write(("# " + "x" * 78 + "\n") * 131_072)
        seconds, kib = measure("refuse", big)
        print(
            f"10 MB spec ({big.stat().st_size:,} bytes): refused for its size in {seconds:.3f} s, "
            f"peak {kib // 1024} MiB"
        )
        rows.append({"case": "10 MB spec", "bytes": big.stat().st_size, "refuse_s": seconds})
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
