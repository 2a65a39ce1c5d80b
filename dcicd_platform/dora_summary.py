"""The DORA summary as people read it: one line per service and the organisation, with tiers.

Shared by `dcicd demo` (a terminal table) and the dora_summary asset's metadata (markdown).
"""

from __future__ import annotations

from dcicd_platform.reading import TIERS, dora_summary

COLUMNS = (
    "service",
    "deploys/day",
    "deploy days/wk",
    "lead time",
    "change fail",
    "restore",
    "rework",
    "tiers (freq/lead/fail/restore)",
    "overall",
)


def human_duration(seconds: float | None) -> str:
    """2 h 05 m, 3.2 d: the unit a person would say."""
    if seconds is None:
        return "-"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400:
        hours, rest = divmod(int(seconds), 3600)
        return f"{hours} h {rest // 60:02d} m"
    return f"{seconds / 86400:.1f} d"


def summary_rows(conn, window_days: int = 30) -> tuple[list[tuple[str, ...]], str | None]:
    """Display rows of marts.dora_summary for one window, and the as_of date (a day of the
    reporting time zone)."""
    rows, as_of = [], None
    for r in dora_summary(conn, window_days):
        tiers, as_of = [r[t] for t in TIERS], r["as_of"]
        rows.append(
            (
                "all services" if r["service"] == "*" else r["service"],
                f"{r['deployments_per_day']:.2f}",
                f"{r['deploy_days_per_week']:.1f}",
                human_duration(r["lead_time_median_s"]),
                "-" if r["change_failure_rate"] is None else f"{r['change_failure_rate']:.0%}",
                human_duration(r["restore_median_s"]),
                "-" if r.get("rework_rate") is None else f"{r['rework_rate']:.0%}",
                "/".join(t or "-" for t in tiers),
                r["overall_tier"] or "-",
            )
        )
    return rows, str(as_of) if as_of else None


NBSP = "\u00a0"


def as_markdown(rows: list[tuple[str, ...]]) -> str:
    """A markdown table whose cells keep to one line: a figure and its unit ("2 h 36 m",
    "all services") are joined by non-breaking spaces, so a narrow column never wraps them."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell.replace(" ", NBSP) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
