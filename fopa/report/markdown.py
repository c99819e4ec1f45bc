"""``report.md``: the claims table and the figures."""

from __future__ import annotations


def report_markdown(claims, figures, meta):
    """The report's Markdown text from the claims rows, figure files and run metadata."""
    lines = [
        "# fopa reproduction report",
        "",
        "Claims of Deng, He, Huang and Su, *Towards Understanding the Dynamics of the "
        "First-Order Adversaries* (ICML 2020), measured by fopa "
        f"{meta['version']} ({meta['source']}, {meta['seconds']:.0f} s). "
        "'agrees' compares the measured direction with the paper's; intervals are 95 % "
        "bootstrap intervals.",
        "",
        "| claim | experiment | statistic | agrees | settings |",
        "|---|---|---|---|---|",
    ]
    for row in claims:
        lines.append(
            f"| {row['claim']} | {row['experiment']} | {row['statistic']} | {row['agrees']} "
            f"| {row['settings']} |"
        )
    lines += ["", "## Figures", ""]
    for name, info in figures.items():
        lines.append(f"![{name}]({info['file']})")
    lines.append("")
    return "\n".join(lines)
