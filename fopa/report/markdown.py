"""``report.md``: the claims table, each verdict with its rule, and the figures."""

from __future__ import annotations


def summary_lines(claims):
    """One sentence per claim, counted from the rows (never written by hand)."""
    out = []
    for claim in dict.fromkeys(row["claim"] for row in claims):
        rows = [row for row in claims if row["claim"] == claim]
        counts = {}
        for row in rows:
            counts[row["verdict"]] = counts.get(row["verdict"], 0) + 1
        tally = ", ".join(f"{n} {verdict}" for verdict, n in counts.items())
        out.append(f"- {claim}: {tally} (of {len(rows)} rows).")
    return out


def report_markdown(claims, figures, meta):
    """The report's Markdown text from the claims rows, figure files and run metadata."""
    lines = [
        "# fopa reproduction report",
        "",
        "Claims of Deng, He, Huang and Su, *Towards Understanding the Dynamics of the "
        "First-Order Adversaries* (ICML 2020), measured by fopa "
        f"{meta['version']} ({meta['source']}, {meta['seconds']:.0f} s). "
        "Each verdict is one of agrees, disagrees, inconclusive and not tested, decided by "
        "the rule written under the table; intervals are 95 %; runs that did not reach a "
        'certified maximum within their budget are censored (kept as "more than the '
        'budget"), never dropped.',
        "",
        "| claim | experiment | statistic | verdict | samples | settings |",
        "|---|---|---|---|---|---|",
    ]
    for row in claims:
        lines.append(
            f"| {row['claim']} | {row['experiment']} | {row['statistic']} | {row['verdict']} "
            f"| {row['n']} | {row['settings']} |"
        )
    lines += ["", "## Summary", "", *summary_lines(claims), "", "## Verdicts and their rules", ""]
    for row in claims:
        lines.append(f"- **{row['experiment']}** ({row['settings']}): **{row['verdict']}**. "
                     f"Measured: {row['reason']}. Rule: {row['rule']}.")  # fmt: skip
    if meta.get("parts"):  # a report built from sweep stores: what each one holds
        lines += ["", "## Sweep stores", "", "| store | cells | cell seconds (summed) |",
                  "|---|---|---|"]  # fmt: skip
        for store, part in meta["parts"].items():
            lines.append(f"| `{store}` | {part['cells']} | {part['cell_seconds']:.0f} |")
    if meta.get("parts") and meta.get("study_seconds"):  # studies run beside the stores
        outside = meta.get("outside", {})
        lines += ["", "## Studies outside the sweeps", "",
                  "| study | configuration | seed | seconds |", "|---|---|---|---|"]  # fmt: skip
        for name, secs in meta["study_seconds"].items():
            part = outside.get(name, {})
            when = "n/a" if secs is None else f"{secs:.0f}"
            lines.append(f"| {name} | {part.get('config', 'n/a')} | {part.get('seed', 'n/a')} "
                         f"| {when} |")  # fmt: skip
    lines += ["", "## Figures", ""]
    for name, info in figures.items():
        lines.append(f"![{name}]({info['file']})")
    lines.append("")
    return "\n".join(lines)
