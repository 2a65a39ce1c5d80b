"""The report's charts: matplotlib figures rendered to inline SVG (text as paths, so the file
needs no font and no script to show them).

Tier bands are DORA's (State of DevOps 2023), read from the one definition
`marts.dora_summary` applies (`dbt_like_sql/macros/dora_tiers.sql`).
"""

from __future__ import annotations

import io
from collections import defaultdict

from dcicd_platform.reading import PR_PHASES
from dcicd_platform.report.figures import WeeklyFigures

PHASE_COLOURS = {"coding": "#4c78a8", "pickup": "#f58518", "review": "#e45756", "deploy": "#54a24b"}
TIER_COLOURS = {"elite": "#d9f2d9", "high": "#eaf5c8", "medium": "#fdf1c7", "low": "#f9d9d4"}
ORGANISATION_COLOUR = "#1f4e9c"
WORST_COLOUR = "#e8710a"
# (metric, its name among the tier bands, title, unit scale, log axis, the axis's floor and
# ceiling in the chart's unit: where the outermost bands stop). A log axis is in hours, its
# ticks labelled as durations (minutes, hours, days, weeks).
DORA_PANELS = [
    ("deploy_days", "deploy_days_per_week", "Deploy days per week", 1, False, (0, 7)),
    (
        "lead_time_median_s",
        "lead_time_median_s",
        "Lead time, median",
        1 / 3600,
        True,
        (0.01, 10_000),
    ),
    ("change_failure_rate", "change_failure_rate", "Change failure rate (%)", 100, False, (0, 100)),
    (
        "restore_median_s",
        "restore_median_s",
        "Time to restore, median",
        1 / 3600,
        True,
        (0.01, 10_000),
    ),
]
# The ticks a duration axis may carry, in hours.
DURATION_TICKS = [1 / 60, 5 / 60, 15 / 60, 1, 4, 24, 72, 168, 720, 2160]


def duration_label(hours: float) -> str:
    """An axis tick in the unit people use for it: '15 min', '4 h', '2 d', '1 w'."""
    if hours < 1:
        return f"{hours * 60:.0f} min"
    if hours < 24:
        return f"{hours:g} h"
    if hours < 168 or hours % 168:
        return f"{hours / 24:g} d"
    return f"{hours / 168:g} w"


def duration_ticks(bottom: float, top: float) -> list[float]:
    """The duration ticks within bottom..top (hours), at most six, spread over the range."""
    ticks = [t for t in DURATION_TICKS if bottom <= t <= top]
    while len(ticks) > 6:
        ticks = ticks[::2]
    return ticks


def worst_service(
    by_service: dict[str, list[dict]], metric: str, week_start, higher_is_better: bool
) -> str | None:
    """The service with the worst value of the metric in the reported week, if any has one."""
    found = {
        service: row[metric]
        for service, rows in by_service.items()
        if service != "*"
        for row in rows
        if row["week_start"] == week_start and row[metric] is not None
    }
    if not found:
        return None
    pick = min if higher_is_better else max
    return pick(found, key=lambda s: (found[s], s))


def dora_bands(
    metric: str, scale: float, floor: float, ceiling: float
) -> list[tuple[str, float, float]]:
    """A metric's tier bands as (tier, low, high) in the chart's unit, lowest value first: the
    bands `marts.dora_summary` tiers by, read from their one definition (the dcicd_dora_bands
    macro), so the chart cannot drift from the tiers."""
    from dcicd_platform.resources import scratch_connection

    with scratch_connection() as conn:
        rows = conn.execute(
            "SELECT tier, comparison, bound FROM dcicd_dora_bands() WHERE metric = ?"
            " ORDER BY bound",
            [metric],
        ).fetchall()
    if not rows:
        raise LookupError(f"no DORA tier bands for {metric}")
    edges = [floor, *(bound * scale for _, _, bound in rows), ceiling]
    if rows[0][1] == ">=":  # higher is better: a band runs from its bound up to the next
        tiers = ["low", *(tier for tier, _, _ in rows)]
    else:  # lower is better: a band runs up to its bound
        tiers = [*(tier for tier, _, _ in rows), "low"]
    return [(tier, edges[i], edges[i + 1]) for i, tier in enumerate(tiers)]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "svg.fonttype": "path",
            "font.size": 9,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.titleweight": "bold",
            "axes.titlesize": 10,
        }
    )
    return plt


def _svg(fig) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    _pyplot().close(fig)
    svg = buffer.getvalue()
    return svg[svg.index("<svg") :]  # inline: no XML prolog or doctype


def _empty(ax, text: str) -> None:
    """A panel of a multi-panel chart with nothing to draw says so."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#777")
    ax.set_xticks([])
    ax.set_yticks([])


def _nothing(text: str) -> str:
    """A chart with nothing to draw is a sentence, not an empty frame."""
    return f'<p class="note">{text}</p>'


def dora_trend(figures: WeeklyFigures) -> str:
    """The four keys week by week over DORA's tier bands: the organisation as one strong line,
    each service as a faint grey one behind it, the reported week's worst service named."""
    plt = _pyplot()
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

    fig, axes = plt.subplots(2, 2, figsize=(10, 6.4))
    by_service: dict[str, list[dict]] = defaultdict(list)
    for row in figures.dora_weekly:
        by_service[row["service"]].append(row)
    for ax, (metric, banded, title, scale, log, (floor, ceiling)) in zip(
        axes.flat, DORA_PANELS, strict=True
    ):
        ax.set_title(title, loc="left")
        worst = worst_service(by_service, metric, figures.week_start, metric == "deploy_days")
        values = []
        for service in sorted(s for s in by_service if s != "*"):
            rows = [r for r in by_service[service] if r[metric] is not None]
            xs = [r["week_start"] for r in rows]
            ys = [r[metric] * scale for r in rows]
            values += ys
            if service == worst:
                ax.plot(xs, ys, lw=1.4, color=WORST_COLOUR, zorder=3, marker=".")
                ax.annotate(  # above its last point, clear of the tier names on the right
                    service,
                    (xs[-1], ys[-1]),
                    xytext=(-3, 5),
                    textcoords="offset points",
                    fontsize=7,
                    color=WORST_COLOUR,
                    ha="right",
                    va="bottom",
                    zorder=5,
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8},
                )
            else:
                ax.plot(xs, ys, lw=0.8, color="#9aa0a6", alpha=0.55, zorder=2)
        org = [r for r in by_service.get("*", []) if r[metric] is not None]
        if org:
            ys = [r[metric] * scale for r in org]
            values += ys
            ax.plot(
                [r["week_start"] for r in org],
                ys,
                color=ORGANISATION_COLOUR,
                lw=2.6,
                marker="o",
                ms=3,
                zorder=4,
            )
        if not values:
            _empty(ax, "no data in these weeks")
            continue
        if log:
            ax.set_yscale("log")
        top = max(values) * (1.6 if log else 1.15)
        bottom = min(v for v in values if v > 0) / 1.6 if log and any(v > 0 for v in values) else 0
        for tier, low, high in dora_bands(banded, scale, floor, ceiling):
            lo, hi = max(low, bottom), min(high, top)  # the part of the band in view
            if lo >= hi:
                continue
            ax.axhspan(lo, hi, color=TIER_COLOURS[tier], zorder=0)
            y = (lo * hi) ** 0.5 if log else (lo + hi) / 2
            ax.text(
                1.01,
                y,
                tier,
                transform=ax.get_yaxis_transform(),
                fontsize=7,
                color="#555",
                va="center",
            )
        ax.set_ylim(bottom if log else 0, top)
        if log:  # durations, not powers of ten
            ticks = duration_ticks(bottom, top)
            ax.yaxis.set_major_locator(FixedLocator(ticks))
            ax.set_yticklabels([duration_label(t) for t in ticks])
            ax.yaxis.set_minor_locator(NullLocator())
            ax.yaxis.set_minor_formatter(NullFormatter())
        ax.tick_params(axis="x", labelrotation=30, labelsize=7)
    handles = [
        plt.Line2D([], [], color=ORGANISATION_COLOUR, lw=2.6, marker="o", ms=3),
        plt.Line2D([], [], color="#9aa0a6", lw=0.8),
        plt.Line2D([], [], color=WORST_COLOUR, lw=1.4, marker="."),
    ]
    labels = ["the organisation", "each service", "the worst service in the reported week"]
    fig.legend(handles, labels, loc="lower center", ncol=3, frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return _svg(fig)


def ci_duration_trend(
    figures: WeeklyFigures, p50_target: float | None, p95_target: float | None
) -> str:
    plt = _pyplot()
    rows = figures.ci_weekly
    if not rows:
        return _nothing("No completed runs in these weeks.")
    fig, ax = plt.subplots(figsize=(10, 3.2))
    xs = [r["week_start"] for r in rows]
    ax.plot(xs, [r["p50_minutes"] for r in rows], marker="o", label="P50", color="#1f77b4")
    ax.plot(xs, [r["p95_minutes"] for r in rows], marker="o", label="P95", color="#d62728")
    for target, label, colour in (
        (p50_target, "P50 target", "#1f77b4"),
        (p95_target, "P95 target", "#d62728"),
    ):
        if target is not None:
            ax.axhline(target, ls="--", lw=1, color=colour, alpha=0.6)
            ax.text(
                xs[0], target, f" {label} {target:g} min", va="bottom", fontsize=7, color=colour
            )
    ax.set_ylabel("minutes per run")
    ax.set_ylim(0, None)
    ax.set_title("CI duration per week, every completed run", loc="left")
    ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1, 1))
    return _svg(fig)


def flakiest_jobs(figures: WeeklyFigures) -> str:
    plt = _pyplot()
    rows = figures.flaky
    if not rows:
        return _nothing("No flaky job on record.")
    fig, ax = plt.subplots(figsize=(10, 0.45 * max(len(rows), 2) + 0.8))
    labels = [f"{r['repo']} / {r['job_name']}" for r in rows][::-1]
    rates = [100 * r["flake_rate"] for r in rows][::-1]
    bars = ax.barh(labels, rates, color="#9467bd")
    for bar, r in zip(bars, rows[::-1], strict=True):
        ax.text(
            bar.get_width(),
            bar.get_y() + bar.get_height() / 2,
            f" {r['flakes']} of {r['executions']}",
            va="center",
            fontsize=7,
        )
    ax.set_xlabel("flake rate (% of executions that failed, then passed on the same sha)")
    ax.set_title(
        f"The {len(rows)} job{'s' if len(rows) != 1 else ''} that most often failed, then passed"
        " (at most 10)",
        loc="left",
    )
    return _svg(fig)


def ci_cost(figures: WeeklyFigures) -> str:
    """Month-to-date CI cost per repository, stacked by runner, with each monthly budget."""
    plt = _pyplot()
    repos = sorted({r["repo"] for r in figures.cost_by_repo})
    if not repos:
        return _nothing("No CI cost this month.")
    fig, ax = plt.subplots(figsize=(10, 0.5 * max(len(repos), 2) + 1))
    runners = sorted({r["runner_label"] for r in figures.cost_by_repo})
    colours = plt.get_cmap("Set2")
    left = dict.fromkeys(repos, 0.0)
    for i, runner in enumerate(runners):
        costs = {
            r["repo"]: r["cost_usd"] or 0.0
            for r in figures.cost_by_repo
            if r["runner_label"] == runner
        }
        widths = [costs.get(repo, 0.0) for repo in repos]
        ax.barh(repos, widths, left=[left[r] for r in repos], label=runner, color=colours(i % 8))
        for repo, width in zip(repos, widths, strict=True):
            left[repo] += width
    for budget in figures.budgets:
        if budget["repo"] in repos:
            y = repos.index(budget["repo"])
            ax.plot([budget["budget_usd"]] * 2, [y - 0.45, y + 0.45], color="#d62728", lw=2)
            ax.text(
                budget["budget_usd"],
                y + 0.48,
                f"budget ${budget['budget_usd']:,.0f}",
                fontsize=7,
                color="#d62728",
                ha="center",
            )
    ax.set_xlabel(f"USD, {figures.week_end:%B} 1 to {figures.week_end:%b %d}")
    ax.set_title("CI cost by repository and runner, month to date", loc="left")
    ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1, 1), fontsize=7)
    return _svg(fig)


def anomalies_by_kind(figures: WeeklyFigures) -> str:
    plt = _pyplot()
    if not figures.anomalies:
        return _nothing("No anomaly was found this week.")
    fig, ax = plt.subplots(figsize=(10, 2.6))
    kinds = sorted({a["kind"] for a in figures.anomalies})
    left = dict.fromkeys(kinds, 0)
    for severity, colour in (("critical", "#d62728"), ("warning", "#ff7f0e"), ("info", "#aaaaaa")):
        counts = [
            sum(a["kind"] == k and a["severity"] == severity for a in figures.anomalies)
            for k in kinds
        ]
        ax.barh(kinds, counts, left=[left[k] for k in kinds], color=colour, label=severity)
        for k, c in zip(kinds, counts, strict=True):
            left[k] += c
    ax.set_xlabel("anomalies detected this week")
    ax.set_title("Anomalies by kind and severity", loc="left")
    ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1, 1))
    return _svg(fig)


def model_quality(figures: WeeklyFigures, floors: dict[str, float]) -> str:
    plt = _pyplot()
    if not figures.model_weekly:
        return _nothing(
            "No run in these weeks was scored by a model that had not learnt from it: live"
            " quality shows once runs arrive after a model's training."
        )
    fig, ax = plt.subplots(figsize=(10, 2.8))
    names = {"build_duration": "duration: within 20%", "build_outcome": "outcome: accuracy"}
    models = sorted({r["model"] for r in figures.model_weekly})
    # One line per model and predictor: a baseline's weeks dashed, in the model's colour.
    for model, predictor in sorted(
        {(r["model"], r.get("predictor")) for r in figures.model_weekly}
    ):
        rows = [
            r
            for r in figures.model_weekly
            if r["model"] == model and r.get("predictor") == predictor
        ]
        colour = ("#1f77b4", "#2ca02c")[models.index(model) % 2]
        baseline = predictor == "baseline"
        ax.plot(
            [r["week_start"] for r in rows],
            [100 * r["quality"] for r in rows],
            marker="s" if baseline else "o",
            ls=":" if baseline else "-",
            color=colour,
            label=names.get(model, model) + (" (baseline serving)" if baseline else ""),
        )
    for model in models:
        if model in floors:
            colour = ("#1f77b4", "#2ca02c")[models.index(model) % 2]
            ax.axhline(100 * floors[model], ls="--", lw=1, color=colour, alpha=0.6)
    ax.set_ylim(0, 100)
    ax.set_ylabel("% of unseen runs")
    ax.set_title("Build predictors, live on runs they never learnt from", loc="left")
    ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1, 1))
    return _svg(fig)


def pull_request_cycle(figures: WeeklyFigures) -> str:
    """Where the week's merged pull requests spent their time, per service and for all: the
    median of each phase stacked (so a bar is not the median cycle, which is marked), in
    hours, or days when a bar runs past three days."""
    plt = _pyplot()
    rows = [r for r in figures.pr_cycle if r["pull_requests"]]
    if not rows:
        return _nothing("No pull request was merged into a default branch this week.")
    rows = sorted(rows, key=lambda r: (r["service"] == "*", r["service"]), reverse=True)
    labels = [
        f"{'all services' if r['service'] == '*' else r['service']} ({r['pull_requests']})"
        for r in rows
    ]
    totals = [sum(max(r[f"{p}_median_s"] or 0, 0) for p in PR_PHASES) for r in rows]
    longest = max([*totals, *(r["cycle_median_s"] or 0 for r in rows)])
    unit, per = ("days", 86400) if longest > 3 * 86400 else ("hours", 3600)
    fig, ax = plt.subplots(figsize=(10, 0.5 * max(len(rows), 2) + 1.2))
    left = [0.0] * len(rows)
    for phase in PR_PHASES:
        # A negative median (reviewed after the merge, say) takes no room in the stack.
        widths = [max(r[f"{phase}_median_s"] or 0, 0) / per for r in rows]
        ax.barh(labels, widths, left=left, color=PHASE_COLOURS[phase], label=phase)
        left = [a + b for a, b in zip(left, widths, strict=True)]
    for y, r in enumerate(rows):
        if r["cycle_median_s"] is not None:
            ax.plot([r["cycle_median_s"] / per] * 2, [y - 0.4, y + 0.4], color="black", lw=1.5)
    ax.plot([], [], color="black", lw=1.5, label="median cycle")
    ax.set_xlabel(f"{unit}: the median of each phase (pull requests merged, in brackets)")
    ax.set_xlim(0, None)
    ax.set_title("Pull-request cycle: coding, pickup, review, deploy", loc="left")
    ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1, 1), fontsize=7)
    return _svg(fig)
