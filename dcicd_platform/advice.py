"""Advice that pays for itself: marts.recommendations as `dcicd recommend`, the demo and the
weekly review show it. Plain rows here, and the one text rendering every screen shares, so
the command line and the report cannot disagree on a saving."""

from __future__ import annotations

from dbt_like_sql.catalog import fetch_dicts, table_exists

# The columns `dcicd recommend --format csv|json` gives, in order (marts.recommendations').
COLUMNS = (
    "rank",
    "status",
    "kind",
    "service",
    "entity",
    "action",
    "evidence",
    "saving_minutes_per_month",
    "saving_usd_per_month",
    "first_seen_at",
    "done_at",
    "measured_saving_minutes_per_month",
    "measured_saving_usd_per_month",
    "recommendation_key",
)


def recommendations(conn, status: str = "all", limit: int | None = None) -> list[dict]:
    """The ranked recommendations (open first, by dollars then minutes), `status` one of
    open, done or all; none before the first refresh built the table."""
    if not table_exists(conn, "marts.recommendations"):
        return []
    where = "" if status == "all" else "WHERE status = ?"
    params: list = [] if status == "all" else [status]
    sql = f"SELECT {', '.join(COLUMNS)} FROM marts.recommendations {where} ORDER BY rank"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return fetch_dicts(conn, sql, params)


def with_status(rows: list[dict], status: str) -> list[dict]:
    """The rows of one status (open or done), or all of them (status "all")."""
    return rows if status == "all" else [r for r in rows if r["status"] == status]


def window_days(conn) -> int | None:
    """The days of evidence each figure counts (config.recommendations), None before a refresh."""
    if not table_exists(conn, "config.recommendations"):
        return None
    rows = conn.execute("SELECT window_days FROM config.recommendations").fetchall()
    return rows[0][0] if rows else None


def minutes(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} min"


def dollars(value: float | None) -> str:
    return "-" if value is None else f"${value:,.2f}"


def saving_line(row: dict) -> str:
    """'261 min and $1.57 a month' (expected), or 'done 2026-05-04: saved 250 min and $1.50 a
    month, measured' for one the data shows done."""
    if row["status"] == "done":
        day = f" {row['done_at']:%Y-%m-%d}" if row["done_at"] else ""
        return (
            f"done{day}: saved {minutes(row['measured_saving_minutes_per_month'])} and"
            f" {dollars(row['measured_saving_usd_per_month'])} a month, measured"
        )
    return (
        f"saves {minutes(row['saving_minutes_per_month'])} and"
        f" {dollars(row['saving_usd_per_month'])} a month"
    )


def render_text(
    rows: list[dict], days: int | None, limit: int | None = None, status: str = "all"
) -> str:
    """The recommendations as a person reads them: a headline with the open total (of every
    row, whatever `status` lists), then the first `limit` of those with `status` (open, done or
    all), each with what to change, its saving and its evidence."""
    opened = with_status(rows, "open")
    done = with_status(rows, "done")
    listed = with_status(rows, status)
    total_minutes = sum(r["saving_minutes_per_month"] or 0 for r in opened)
    total_usd = sum(r["saving_usd_per_month"] or 0 for r in opened)
    window = f" (evidence: the last {days} days, scaled to a 30-day month)" if days else ""
    lines = [
        f"Recommendations{window}: {len(opened)} open, saving {minutes(total_minutes)} and"
        f" {dollars(total_usd)} a month; {len(done)} done"
    ]
    if not rows:
        lines.append("nothing to recommend: no evidence meets the thresholds")
    elif not listed:
        lines.append(f"none {status}")
    for r in listed[:limit]:
        lines.append(f"{r['rank']:>3}. [{r['kind']}] {r['entity']}: {r['action']}")
        lines.append(f"     {saving_line(r)}")
        lines.append(f"     evidence: {r['evidence']}")
    if limit is not None and len(listed) > limit:
        again = "dcicd recommend" + ("" if status == "all" else f" --status {status}")
        lines.append(f"... {len(listed) - limit} more: {again}")
    return "\n".join(lines)
