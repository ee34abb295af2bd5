"""What a report says about sharding (`trustproof run --shard K/N`, `trustproof report merge`):
that a shard's report covers only its slice, and which shards a merged report joined."""

from __future__ import annotations

from trustproof.results import Results


def shard_lines(results: Results) -> list[str]:
    """Markdown lines (none for a run that was neither sharded nor merged)."""
    if results.shard is not None:
        return [
            f"**Shard {results.shard}**: only this shard's slice of the cases and scenarios; "
            "`trustproof report merge` joins every shard into the verdict.",
            "",
        ]
    if not results.merged_from:
        return []
    parts = ", ".join(
        f"{p.index}/{p.total} {'✅' if p.ok else '❌'} {p.cases} cases, {p.scenarios} scenarios "
        f"in {p.elapsed_s:.2f} s"
        for p in results.merged_from
    )
    return [
        f"Merged from {len(results.merged_from)} shards ({parts}); the time above is the "
        "longest shard's.",
        "",
    ]
