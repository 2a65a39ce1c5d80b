-- description: What to change to save CI minutes and dollars, each with its evidence and expected monthly saving (marts.recommendation_history at as_of): `open` while the data still shows it; `done` once it did at an earlier checkpoint and no longer does, then with the saving measured (the same monthly figure at its peak while listed, less what it is now; a hibernation advice whose environment is deployed again is withdrawn, not done). Ranked by dollars, then minutes; open before done.
WITH history AS (
    SELECT * FROM marts.recommendation_history
), latest AS (
    SELECT max(received_at) AS latest_at FROM raw.events
), current AS (
    SELECT * FROM history WHERE is_current
), ever AS (
    SELECT recommendation_key,
        min(checkpoint_at) FILTER (WHERE listed) AS first_seen_at,
        max(checkpoint) FILTER (WHERE listed) AS last_listed,
        -- the fullest evidence while listed: the figure a done one's saving is measured from
        arg_max(checkpoint, (saving_usd_per_month, saving_minutes_per_month, checkpoint))
            FILTER (WHERE listed) AS peak
    FROM history
    GROUP BY recommendation_key
    HAVING bool_or(listed)
), shown AS (
    -- open: as it stands now; done: as it was at its peak while listed
    SELECT h.* EXCLUDE (listed, withdrawn), e.first_seen_at, e.last_listed, coalesce(c.listed, false) AS open,
        coalesce(c.withdrawn, false) AS withdrawn,
        c.saving_minutes_per_month AS now_minutes, c.saving_usd_per_month AS now_usd
    FROM ever e
    LEFT JOIN current c ON c.recommendation_key = e.recommendation_key
    JOIN history h ON h.recommendation_key = e.recommendation_key
        AND h.checkpoint = CASE WHEN coalesce(c.listed, false) THEN e.last_listed ELSE e.peak END
)
SELECT
    row_number() OVER (ORDER BY open DESC, saving_usd_per_month DESC,
        saving_minutes_per_month DESC, recommendation_key)::INTEGER AS rank,
    recommendation_key, kind, service, entity, action, evidence,
    saving_minutes_per_month, saving_usd_per_month,
    CASE WHEN open THEN 'open' ELSE 'done' END AS status,
    first_seen_at,
    -- the first checkpoint that no longer listed it: a week after the last that did
    CASE WHEN NOT open THEN least(
        dcicd_day_start(last_listed + 8, (SELECT time_zone FROM config.reporting)),
        (SELECT latest_at FROM latest)) END AS done_at,
    CASE WHEN NOT open THEN round(saving_minutes_per_month - coalesce(now_minutes, 0), 1) END
        AS measured_saving_minutes_per_month,
    CASE WHEN NOT open THEN round(saving_usd_per_month - coalesce(now_usd, 0), 2) END
        AS measured_saving_usd_per_month
FROM shown
WHERE NOT withdrawn OR open
ORDER BY rank
