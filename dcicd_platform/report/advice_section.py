"""The weekly review's "Advice that pays for itself" section: the open recommendations with
their expected monthly savings and evidence, and those the data shows done with the saving
measured (marts.recommendations, read as `dcicd recommend` reads it)."""

from __future__ import annotations

from html import escape

from dcicd_platform.advice import dollars, minutes, recommendations, saving_line, window_days

SHOWN = 10  # open recommendations in the report; `dcicd recommend` lists every one


def gather(conn) -> dict:
    """The section's rows: {'open': [...], 'done': [...], 'days': window or None}."""
    rows = recommendations(conn)
    return {
        "open": [r for r in rows if r["status"] == "open"],
        "done": [r for r in rows if r["status"] == "done"],
        "days": window_days(conn),
    }


def render(section: dict | None) -> str:
    """The section as HTML (escaped here: the template marks it safe)."""
    section = section or {"open": [], "done": [], "days": None}
    opened, done = section["open"], section["done"]
    total_minutes = sum(r["saving_minutes_per_month"] or 0 for r in opened)
    total_usd = sum(r["saving_usd_per_month"] or 0 for r in opened)
    days = f"the last {section['days']} days" if section["days"] else "the trailing window"
    parts = [
        '<h2 id="advice">Advice that pays for itself</h2>',
        f'<p class="note">What to change, with the evidence of {escape(days)} and the expected'
        " saving scaled to a 30-day month (<code>marts.recommendations</code>;"
        " every one: <code>dcicd recommend</code>). A recommendation stays until the data shows"
        " it done, then shows the saving measured.</p>",
    ]
    if not opened and not done:
        parts.append("<p>Nothing to recommend: no evidence meets the thresholds.</p>")
        return "\n".join(parts)
    parts.append(
        f"<p><strong>{len(opened)} open</strong>, saving {escape(minutes(total_minutes))} and"
        f" {escape(dollars(total_usd))} a month; {len(done)} done.</p>"
    )
    if opened:
        parts.append(
            "<table>\n<tr><th>#</th><th>kind</th><th>what to change</th><th>min/month</th>"
            "<th>USD/month</th><th>evidence</th></tr>"
        )
        for r in opened[:SHOWN]:
            parts.append(
                f"<tr><td>{r['rank']}</td><td>{escape(r['kind'])}</td>"
                f"<td>{escape(r['entity'])}: {escape(r['action'] or '')}</td>"
                f"<td>{escape(minutes(r['saving_minutes_per_month']))}</td>"
                f"<td>{escape(dollars(r['saving_usd_per_month']))}</td>"
                f'<td class="note">{escape(r["evidence"] or "")}</td></tr>'
            )
        parts.append("</table>")
    if done:
        parts.append("<p>Done, the saving measured:</p>\n<ul>")
        for r in done[:SHOWN]:
            parts.append(
                f"<li>{escape(r['kind'])} {escape(r['entity'])}: {escape(saving_line(r))}</li>"
            )
        parts.append("</ul>")
    return "\n".join(parts)
