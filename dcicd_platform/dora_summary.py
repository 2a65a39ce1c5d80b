"""The DORA summary as people read it: one line per service and the organisation, with tiers.

Shared by `dcicd demo` (a terminal table) and the dora_summary asset's metadata (markdown).
"""

from __future__ import annotations

COLUMNS = (
    "service",
    "deploys/day",
    "deploy days/wk",
    "lead time",
    "change fail",
    "restore",
    "tiers (freq/lead/fail/restore)",
    "overall",
)

_QUERY = """
SELECT service, deployments_per_day, deploy_days_per_week, lead_time_median_s,
    change_failure_rate, restore_median_s, deployment_frequency_tier, lead_time_tier,
    change_failure_tier, restore_tier, overall_tier, as_of
FROM marts.dora_summary
WHERE window_days = ?
ORDER BY service = '*', service
"""


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
    """Display rows of marts.dora_summary for one window, and the as_of date."""
    rows, as_of = [], None
    for r in conn.execute(_QUERY, [window_days]).fetchall():
        service, per_day, days_week, lead, cfr, restore = r[:6]
        tiers, overall, as_of = r[6:10], r[10], r[11]
        rows.append(
            (
                "all services" if service == "*" else service,
                f"{per_day:.2f}",
                f"{days_week:.1f}",
                human_duration(lead),
                "-" if cfr is None else f"{cfr:.0%}",
                human_duration(restore),
                "/".join(t or "-" for t in tiers),
                overall or "-",
            )
        )
    return rows, str(as_of) if as_of else None


def as_markdown(rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
