-- The DORA tier bands (State of DevOps 2023), defined once: marts.dora_summary tiers each
-- metric with dcicd_dora_tier, and the report's DORA chart draws these same bands.
-- A metric's value reaches a tier when it compares to `bound` by `comparison`; the best tier
-- it reaches is its tier, and a value that reaches none is 'low'. Deployment frequency counts
-- deploy days per week, so ten deploys on one Monday do not make a daily deployer.
CREATE OR REPLACE MACRO dcicd_dora_bands() AS TABLE
    SELECT metric, tier, tier_rank, comparison, bound::DOUBLE AS bound
    FROM (VALUES
        ('deploy_days_per_week', 'elite', 4, '>=', 5),
        ('deploy_days_per_week', 'high', 3, '>=', 1),
        ('deploy_days_per_week', 'medium', 2, '>=', 7 / 30),
        ('lead_time_median_s', 'elite', 4, '<', 86400),
        ('lead_time_median_s', 'high', 3, '<', 7 * 86400),
        ('lead_time_median_s', 'medium', 2, '<', 30 * 86400),
        ('change_failure_rate', 'elite', 4, '<=', 0.05),
        ('change_failure_rate', 'high', 3, '<=', 0.10),
        ('change_failure_rate', 'medium', 2, '<=', 0.15),
        ('restore_median_s', 'elite', 4, '<', 3600),
        ('restore_median_s', 'high', 3, '<', 86400),
        ('restore_median_s', 'medium', 2, '<', 7 * 86400)
    ) AS bands(metric, tier, tier_rank, comparison, bound);
-- A metric's tier: NULL for no value (no data), else its best band, else 'low'.
CREATE OR REPLACE MACRO dcicd_dora_tier(metric_name, v) AS (
    CASE WHEN v IS NULL THEN NULL ELSE coalesce((
        SELECT max_by(b.tier, b.tier_rank) FROM dcicd_dora_bands() b
        WHERE b.metric = metric_name AND CASE b.comparison
            WHEN '>=' THEN v >= b.bound WHEN '<' THEN v < b.bound ELSE v <= b.bound END
    ), 'low') END
);
