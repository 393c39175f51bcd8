"""The per-round table a run prints and writes, with the control run beside the rounds."""

from __future__ import annotations

from pathlib import Path

from herd.core.artifacts import atomic_write_json, atomic_write_text

COLUMNS = (
    ("verifier_accuracy", "verifier accuracy", "{:.1%}"),
    ("reward_mean", "reward mean", "{:.3f}"),
    ("violation_rate", "violation rate (VR)", "{:.1%}"),
    ("false_refusal_rate", "false refusal rate (FRR)", "{:.1%}"),
    ("optimizer_steps", "optimizer steps", "{:d}"),
)


def _cell(value, fmt: str) -> str:
    if value is None:
        return "–"
    try:
        return fmt.format(value)
    except (ValueError, TypeError):
        return str(value)


def table(rounds: list[dict], control: dict | None) -> str:
    """Markdown table: one row per round (0 = the starting policy), then the control run."""
    head = "| round | " + " | ".join(title for _, title, _ in COLUMNS) + " |"
    sep = "|---|" + "---|" * len(COLUMNS)
    rows = [head, sep]
    for m in rounds + ([control] if control else []):
        rows.append(f"| {m['round']} | " + " | ".join(_cell(m.get(k), f) for k, _, f in COLUMNS) + " |")
    return "\n".join(rows) + "\n"


def write_summary(report_dir: Path, rounds: list[dict], control: dict | None, skipped: list[dict] | None = None) -> str:
    """Write ``summary.md`` and ``summary.json`` (rounds + control + training stages skipped for
    want of data) and append the table to ``report.md``; returns the table text."""
    report_dir = Path(report_dir)
    text = table(rounds, control)
    lines = ["# Round summary", "", text]
    if control and rounds:
        first, last = rounds[0].get("verifier_accuracy"), rounds[-1].get("verifier_accuracy")
        ctrl = control.get("verifier_accuracy")
        if None not in (first, last, ctrl):
            lines.append(
                f"Verifier accuracy went from {first:.1%} (round 0) to {last:.1%} (round {rounds[-1]['round']}), "
                f"a change of {100 * (last - first):+.1f} points; the control run (plain SFT on the seed data for "
                f"the same {control.get('optimizer_steps')} optimizer steps) reached {ctrl:.1%}.\n"
            )
    for skip in skipped or []:
        lines.append(f"Round {skip['round']}: {skip['stage']} skipped — {skip['why']}.\n")
    summary = "\n".join(lines)
    atomic_write_text(report_dir / "summary.md", summary)
    atomic_write_json(report_dir / "summary.json", {"rounds": rounds, "control": control, "skipped": skipped or []})
    report = report_dir / "report.md"
    if report.exists():
        body = report.read_text(encoding="utf-8")
        marker = "\n## Rounds and control run\n"
        body = body.split(marker)[0]
        atomic_write_text(report, body.rstrip() + "\n" + marker + "\n" + "\n".join(lines[2:]) + "\n")
    return text
