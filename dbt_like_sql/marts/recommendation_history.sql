-- description: The advice's evidence at weekly checkpoints: at as_of and at each of the `history_weeks` weeks before it, every kind of recommendation computed over the `window_days` ending there (days of the reporting time zone) and scaled to a 30-day month. One row per checkpoint and recommendation with a saving to measure; `listed` when the evidence meets the configured thresholds. marts.recommendations reads it: listed now is open, listed before and no longer is done, with the saving measured as the same figure then against now. Derived from the data alone, so a rebuild gives the same table.
WITH RECURSIVE cfg AS (
    SELECT * FROM config.recommendations
), zone AS (
    SELECT time_zone AS tz FROM config.reporting
), bounds AS (
    SELECT max(received_at) AS latest_at,
        dcicd_local_day(max(received_at), (SELECT time_zone FROM config.reporting)) AS as_of,
        dcicd_local_day(min(received_at), (SELECT time_zone FROM config.reporting)) AS first_day
    FROM raw.events
), checkpoints AS (
    -- as_of, then a week apart back to the first day with data (at most history_weeks)
    SELECT b.as_of - (7 * k)::INTEGER AS checkpoint,
        b.as_of - (7 * k + c.window_days - 1)::INTEGER AS window_start,
        k = 0 AS is_current,
        -- the moment the checkpoint's evidence ends: the end of its day, or the latest event
        least(dcicd_day_start(b.as_of - (7 * k - 1)::INTEGER, (SELECT tz FROM zone)),
            b.latest_at) AS checkpoint_at,
        30.0 / c.window_days AS per_month
    FROM bounds b, cfg c, (SELECT unnest(range(0, (SELECT history_weeks FROM cfg) + 1)) AS k)
    WHERE b.as_of IS NOT NULL AND (k = 0 OR b.as_of - (7 * k)::INTEGER >= b.first_day)
), jobs AS MATERIALIZED (
    SELECT c.job_key, c.run_key, c.repo, c.workflow, c.job_name, c.runner_label, c.conclusion,
        c.day, c.billable_minutes, c.usd_per_minute::DOUBLE AS usd_per_minute,
        c.cost_usd::DOUBLE AS cost_usd, j.sha, j.queued_at, j.started_at, j.finished_at,
        j.duration_s, j.queue_s, j.ran, coalesce(r.service, c.repo) AS service,
        r.trigger_event
    FROM marts.ci_job_costs c
    JOIN core.pipeline_jobs j USING (job_key)
    LEFT JOIN core.pipeline_runs r ON r.run_key = c.run_key
    -- the jobs some checkpoint's window holds: older history is read by no figure
    WHERE c.day >= (SELECT min(window_start) FROM checkpoints)
), windowed AS MATERIALIZED (
    SELECT k.checkpoint, k.per_month, j.*
    FROM jobs j JOIN checkpoints k ON j.day BETWEEN k.window_start AND k.checkpoint
),

-- flaky_job: failed, then passed on the same sha (marts.flaky_jobs' definition)
executions AS (
    SELECT job_key,
        coalesce(bool_or(conclusion = 'success') OVER (
            PARTITION BY repo, workflow, job_name, sha ORDER BY finished_at, job_key
            ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING), false) AS passed_later
    FROM jobs
    WHERE conclusion IN ('success', 'failure', 'timed_out') AND sha IS NOT NULL
), flaky AS (
    SELECT w.checkpoint, w.repo, w.workflow, w.job_name, any_value(w.service) AS service,
        any_value(w.per_month) AS per_month,
        count(*) AS executions,
        count(*) FILTER (WHERE w.conclusion <> 'success' AND e.passed_later) AS flakes,
        count(DISTINCT w.sha) FILTER (WHERE w.conclusion <> 'success' AND e.passed_later)
            AS commits,
        coalesce(sum(w.billable_minutes) FILTER (
            WHERE w.conclusion <> 'success' AND e.passed_later), 0) AS failed_minutes,
        coalesce(sum(w.cost_usd) FILTER (
            WHERE w.conclusion <> 'success' AND e.passed_later), 0) AS failed_usd
    FROM windowed w JOIN executions e USING (job_key)
    GROUP BY w.checkpoint, w.repo, w.workflow, w.job_name
), flaky_advice AS (
    SELECT f.checkpoint, 'flaky_job' AS kind,
        'flaky_job:' || f.repo || ':' || f.workflow || ':' || f.job_name AS recommendation_key,
        f.service, f.repo || ' / ' || f.workflow || ' / ' || f.job_name AS entity,
        'quarantine or fix the flaky job' AS action,
        printf('%d of its %d executions in %d days failed, then passed when re-run on the same '
            || 'commit (%d commits): %d failed minutes, $%.2f', f.flakes, f.executions,
            c.window_days, f.commits, f.failed_minutes, f.failed_usd) AS evidence,
        f.failed_minutes * f.per_month AS saving_minutes, f.failed_usd * f.per_month AS saving_usd,
        f.flakes >= c.flaky_min_flakes AS qualifies
    FROM flaky f, cfg c
    WHERE f.flakes > 0
),

-- timeout: far above the P99 of its successful runs; a hung run burns up to the timeout.
-- GitHub jobs: the default timeout is GitHub's (GitLab's is the project's, not known here).
job_p99 AS (
    SELECT checkpoint, repo, workflow, job_name,
        count(*) FILTER (WHERE conclusion = 'success') AS successes,
        quantile_cont(duration_s, 0.99) FILTER (WHERE conclusion = 'success') AS p99_s
    FROM windowed
    WHERE ran AND duration_s IS NOT NULL AND starts_with(job_key, 'github:')
    GROUP BY ALL
), proposed AS (
    SELECT p.*, ceil(p.p99_s * c.timeout_headroom / 60) AS proposed_minutes
    FROM job_p99 p, cfg c
    WHERE p.p99_s IS NOT NULL
), timeouts AS (
    SELECT w.checkpoint, w.repo, w.workflow, w.job_name, any_value(w.service) AS service,
        any_value(w.per_month) AS per_month, any_value(p.successes) AS successes,
        any_value(p.p99_s) AS p99_s, any_value(p.proposed_minutes) AS proposed_minutes,
        count(*) FILTER (WHERE w.billable_minutes > p.proposed_minutes) AS beyond,
        count(*) FILTER (WHERE w.conclusion = 'timed_out') AS timed_out,
        sum(greatest(0, w.billable_minutes - p.proposed_minutes)) AS beyond_minutes,
        sum(greatest(0, w.billable_minutes - p.proposed_minutes) * w.usd_per_minute)
            AS beyond_usd
    FROM windowed w
    JOIN proposed p USING (checkpoint, repo, workflow, job_name)
    WHERE w.ran AND starts_with(w.job_key, 'github:')
    GROUP BY w.checkpoint, w.repo, w.workflow, w.job_name
), timeout_advice AS (
    SELECT t.checkpoint, 'timeout' AS kind,
        'timeout:' || t.repo || ':' || t.workflow || ':' || t.job_name AS recommendation_key,
        t.service, t.repo || ' / ' || t.workflow || ' / ' || t.job_name AS entity,
        printf('set timeout-minutes: %d (twice its P99; now %d)', t.proposed_minutes::BIGINT,
            c.job_timeout_minutes::BIGINT) AS action,
        printf('P99 of %d successful runs %.1f min against a %d min timeout; in %d days %d runs '
            || 'went past %d min (%d timed out), %d minutes beyond it',
            t.successes, t.p99_s / 60, c.job_timeout_minutes::BIGINT, c.window_days, t.beyond,
            t.proposed_minutes::BIGINT, t.timed_out, t.beyond_minutes::BIGINT) AS evidence,
        t.beyond_minutes * t.per_month AS saving_minutes, t.beyond_usd * t.per_month AS saving_usd,
        t.successes >= c.min_executions
            AND c.job_timeout_minutes >= c.timeout_ratio * t.p99_s / 60 AS qualifies
    FROM timeouts t, cfg c
    WHERE t.beyond_minutes > 0
),

-- cache_step: a step every successful run repeats, long and stable (the job's `steps` timings)
cacheable AS (
    -- step names that fetch or build what a cache keeps (matched once per distinct name)
    SELECT step_name FROM (SELECT DISTINCT step_name FROM core.job_steps) n, cfg c
    WHERE n.step_name NOT IN ('Set up job', 'Complete job')
        AND NOT starts_with(n.step_name, 'Post ')
        AND NOT contains(lower(n.step_name), 'cache')
        AND regexp_matches(n.step_name, c.cache_step_pattern)
), step_runs AS (
    SELECT w.checkpoint, w.per_month, w.repo, w.workflow, w.job_name, w.service, w.job_key,
        w.usd_per_minute, s.step_name, s.duration_s
    FROM windowed w
    JOIN core.job_steps s USING (job_key)
    SEMI JOIN cacheable USING (step_name)
    WHERE w.conclusion = 'success' AND s.conclusion = 'success' AND s.duration_s IS NOT NULL
), runs_with_steps AS (
    SELECT checkpoint, repo, workflow, job_name, count(DISTINCT job_key) AS job_runs
    FROM step_runs GROUP BY ALL
), steps AS (
    SELECT s.checkpoint, s.repo, s.workflow, s.job_name, s.step_name,
        any_value(s.service) AS service, any_value(s.per_month) AS per_month,
        count(*) AS executions, any_value(r.job_runs) AS job_runs,
        median(s.duration_s) AS median_s, avg(s.duration_s) AS mean_s,
        stddev_pop(s.duration_s) AS sd_s,
        sum(greatest(0, s.duration_s - c.cache_restore_seconds)) / 60 AS repeated_minutes,
        sum(greatest(0, s.duration_s - c.cache_restore_seconds) / 60 * s.usd_per_minute)
            AS repeated_usd
    FROM step_runs s
    JOIN runs_with_steps r USING (checkpoint, repo, workflow, job_name)
    CROSS JOIN cfg c
    GROUP BY s.checkpoint, s.repo, s.workflow, s.job_name, s.step_name
), cache_advice AS (
    SELECT s.checkpoint, 'cache_step' AS kind,
        'cache_step:' || s.repo || ':' || s.workflow || ':' || s.job_name || ':' || s.step_name
            AS recommendation_key,
        s.service,
        s.repo || ' / ' || s.workflow || ' / ' || s.job_name || ' / ' || s.step_name AS entity,
        'cache what this step rebuilds (restoring a cache: ' || c.cache_restore_seconds::BIGINT
            || ' s)' AS action,
        printf('every one of %d successful runs spent %.0f s on it (median; spread %.0f%% of '
            || 'the mean)', s.executions, s.median_s, 100 * s.sd_s / nullif(s.mean_s, 0))
            AS evidence,
        s.repeated_minutes * s.per_month AS saving_minutes,
        s.repeated_usd * s.per_month AS saving_usd,
        s.executions >= c.min_executions AND s.executions >= s.job_runs
            AND s.median_s >= c.cache_min_step_seconds
            AND s.sd_s <= c.cache_max_variation * s.mean_s AS qualifies
    FROM steps s, cfg c
    WHERE s.repeated_minutes > 0
),

-- right_size_runner (1): a dearer runner label that is not faster than a cheaper one
label_rates AS (
    SELECT repo, workflow, job_name, runner_label, max(usd_per_minute) AS rate
    FROM jobs WHERE ran AND runner_label IS NOT NULL GROUP BY ALL
), label_pairs AS (
    SELECT d.repo, d.workflow, d.job_name, d.runner_label AS dear_label, d.rate AS dear_rate,
        c.runner_label AS cheap_label, c.rate AS cheap_rate
    FROM label_rates d JOIN label_rates c
        ON c.repo = d.repo AND c.workflow = d.workflow AND c.job_name = d.job_name
        AND c.rate < d.rate
), label_stats AS (
    SELECT checkpoint, repo, workflow, job_name, runner_label,
        any_value(service) AS service, any_value(per_month) AS per_month,
        count(*) FILTER (WHERE conclusion = 'success') AS successes,
        median(duration_s) FILTER (WHERE conclusion = 'success') AS median_s,
        sum(billable_minutes) AS minutes
    FROM windowed WHERE ran GROUP BY ALL
), runner_pairs AS (
    SELECT d.checkpoint, p.*, d.service, d.per_month, d.minutes AS dear_minutes,
        d.successes AS dear_successes, d.median_s AS dear_median_s,
        ch.successes AS cheap_successes, ch.median_s AS cheap_median_s,
        coalesce(d.successes >= c.min_executions AND ch.successes >= c.min_executions
            AND d.median_s >= ch.median_s, false) AS not_faster
    FROM label_pairs p
    JOIN label_stats d ON d.repo = p.repo AND d.workflow = p.workflow
        AND d.job_name = p.job_name AND d.runner_label = p.dear_label
    LEFT JOIN label_stats ch ON ch.checkpoint = d.checkpoint AND ch.repo = p.repo
        AND ch.workflow = p.workflow AND ch.job_name = p.job_name
        AND ch.runner_label = p.cheap_label
    CROSS JOIN cfg c
), runner_advice AS (
    SELECT p.checkpoint, 'right_size_runner' AS kind,
        'right_size_runner:' || p.repo || ':' || p.workflow || ':' || p.job_name || ':'
            || p.dear_label || '->' || p.cheap_label AS recommendation_key,
        p.service, p.repo || ' / ' || p.workflow || ' / ' || p.job_name AS entity,
        printf('run it on %s instead of %s', p.cheap_label, p.dear_label) AS action,
        printf('median %.0f s on %s ($%.3f/min, %d runs) against %.0f s on %s ($%.3f/min, '
            || '%d runs): the dearer label is not faster; %d billed minutes on it in %d days',
            p.dear_median_s, p.dear_label, p.dear_rate, p.dear_successes, p.cheap_median_s,
            p.cheap_label, p.cheap_rate, p.cheap_successes, p.dear_minutes, c.window_days)
            AS evidence,
        0.0 AS saving_minutes,
        p.dear_minutes * (p.dear_rate - p.cheap_rate) * p.per_month AS saving_usd,
        -- the cheapest label that does as well
        p.not_faster AND p.cheap_rate = min(p.cheap_rate) FILTER (WHERE p.not_faster) OVER (
            PARTITION BY p.checkpoint, p.repo, p.workflow, p.job_name, p.dear_label)
            AS qualifies
    FROM runner_pairs p, cfg c
    WHERE p.dear_minutes > 0
),

-- right_size_runner (2): a saturated label, where jobs wait longer than they run
queues AS (
    SELECT checkpoint, runner_label, any_value(per_month) AS per_month, count(*) AS jobs,
        sum(queue_s) AS queue_s, sum(duration_s) AS duration_s,
        median(queue_s) AS median_queue_s, median(duration_s) AS median_duration_s,
        sum(greatest(0, queue_s - (SELECT queue_target_seconds FROM cfg))) / 60 AS waiting_minutes
    FROM windowed
    WHERE ran AND queue_s IS NOT NULL AND duration_s IS NOT NULL AND runner_label IS NOT NULL
    GROUP BY ALL
), queue_advice AS (
    SELECT q.checkpoint, 'right_size_runner' AS kind,
        'right_size_runner:queue:' || q.runner_label AS recommendation_key, '*' AS service,
        q.runner_label AS entity,
        'add runners to the label (or move jobs off it): its jobs wait longer than they run'
            AS action,
        printf('%d jobs in %d days queued %.0f min in all against %.0f min running (median '
            || 'wait %.0f s, run %.0f s); %.0f min beyond a %.0f s wait', q.jobs, c.window_days,
            q.queue_s / 60, q.duration_s / 60, q.median_queue_s, q.median_duration_s,
            q.waiting_minutes, c.queue_target_seconds) AS evidence,
        q.waiting_minutes * q.per_month AS saving_minutes, 0.0 AS saving_usd,
        q.jobs >= c.min_executions AND q.queue_s > q.duration_s AS qualifies
    FROM queues q, cfg c
    WHERE q.waiting_minutes > 0
),

-- critical_path: the job that sets a slow workflow's critical path, split in two halves
run_jobs AS MATERIALIZED (
    SELECT run_key, job_key, job_name, started_at, finished_at, duration_s
    FROM jobs
    WHERE ran AND started_at IS NOT NULL AND finished_at IS NOT NULL AND duration_s IS NOT NULL
), last_jobs AS (
    SELECT run_key, job_key FROM run_jobs
    QUALIFY row_number() OVER (
        PARTITION BY run_key ORDER BY finished_at DESC, duration_s DESC, job_key) = 1
), predecessors AS (
    -- the job a job waited for: of its run, the one that finished last before it started
    SELECT a.job_key, b.job_key AS before_key
    FROM run_jobs a
    -- (started strictly before it: the chain goes back in time, and ends)
    JOIN run_jobs b ON b.run_key = a.run_key AND b.job_key <> a.job_key
        AND b.finished_at <= a.started_at AND b.started_at < a.started_at
    QUALIFY row_number() OVER (
        PARTITION BY a.job_key ORDER BY b.finished_at DESC, b.duration_s DESC, b.job_key) = 1
), chain(run_key, job_key) AS (
    SELECT run_key, job_key FROM last_jobs
    UNION ALL
    SELECT c.run_key, p.before_key FROM chain c JOIN predecessors p ON p.job_key = c.job_key
), critical AS (
    -- the longest job on each run's critical path
    SELECT c.run_key, j.job_key, j.job_name, j.started_at, j.finished_at, j.duration_s
    FROM chain c JOIN run_jobs j ON j.job_key = c.job_key
    QUALIFY row_number() OVER (PARTITION BY c.run_key ORDER BY j.duration_s DESC, j.job_key) = 1
), split_gain AS (
    -- split in two halves run side by side, the job takes half its time, or as long as the
    -- jobs beside it still run after its start, whichever is longer
    SELECT c.run_key, c.job_name, c.duration_s,
        c.duration_s - greatest(c.duration_s / 2, coalesce(max(least(c.duration_s,
            epoch(s.finished_at) - epoch(c.started_at))), 0)) AS gain_s
    FROM critical c
    LEFT JOIN run_jobs s ON s.run_key = c.run_key AND s.job_key <> c.job_key
        AND s.started_at < c.finished_at AND s.finished_at > c.started_at
    GROUP BY c.run_key, c.job_name, c.duration_s
), runs AS (
    SELECT k.checkpoint, k.per_month, r.run_key, r.repo, r.workflow, r.service, r.duration_s
    FROM core.pipeline_runs r
    JOIN checkpoints k ON dcicd_local_day(r.started_at, (SELECT tz FROM zone))
        BETWEEN k.window_start AND k.checkpoint
    -- successful runs: a failed or hung one's job timings do not show its critical path
    WHERE r.conclusion = 'success' AND r.duration_s IS NOT NULL
), workflow_p95 AS (
    SELECT checkpoint, repo, workflow, any_value(service) AS service,
        any_value(per_month) AS per_month, count(*) AS runs,
        quantile_cont(duration_s, 0.95) AS p95_s
    FROM runs GROUP BY ALL
), critical_jobs AS (
    SELECT r.checkpoint, r.repo, r.workflow, g.job_name, count(*) AS runs_on_path,
        median(g.duration_s) AS median_s, sum(g.gain_s) / 60 AS gain_minutes
    FROM runs r JOIN split_gain g USING (run_key)
    GROUP BY r.checkpoint, r.repo, r.workflow, g.job_name
    QUALIFY row_number() OVER (
        PARTITION BY r.checkpoint, r.repo, r.workflow ORDER BY gain_minutes DESC, g.job_name) = 1
), critical_advice AS (
    SELECT w.checkpoint, 'critical_path' AS kind,
        'critical_path:' || w.repo || ':' || w.workflow AS recommendation_key, w.service,
        w.repo || ' / ' || w.workflow AS entity,
        printf('split or parallelise %s, the longest job on the critical path', j.job_name)
            AS action,
        printf('P95 of successful runs %.1f min against a %.0f min target over %d runs in %d days; %s sets the '
            || 'critical path of %d of them (median %.1f min); wall-clock minutes, billing '
            || 'unchanged', w.p95_s / 60, s.kpi_ci_duration_p95_minutes, w.runs, c.window_days,
            j.job_name, j.runs_on_path, j.median_s / 60) AS evidence,
        j.gain_minutes * w.per_month AS saving_minutes, 0.0 AS saving_usd,
        w.p95_s > s.kpi_ci_duration_p95_minutes * 60 AS qualifies
    FROM workflow_p95 w
    JOIN critical_jobs j USING (checkpoint, repo, workflow)
    CROSS JOIN cfg c CROSS JOIN config.settings s
    WHERE j.gain_minutes > 0
),

-- schedule: a scheduled workflow run when its runners' queues are longest
hourly_queue AS (
    -- the median wait per runner label and hour of the day (UTC, the hours cron counts in)
    SELECT checkpoint, runner_label, hour(queued_at) AS hour, median(queue_s) AS median_queue_s
    FROM windowed
    WHERE ran AND queue_s IS NOT NULL AND runner_label IS NOT NULL
    GROUP BY ALL
    HAVING count(*) >= (SELECT min_executions FROM cfg)
), scheduled AS (
    SELECT * FROM windowed
    WHERE trigger_event = 'schedule' AND ran AND queue_s IS NOT NULL AND runner_label IS NOT NULL
), schedule_now AS (
    SELECT checkpoint, repo, workflow, any_value(service) AS service,
        any_value(per_month) AS per_month, count(*) AS jobs, count(DISTINCT run_key) AS runs,
        sum(queue_s) AS queue_s, mode(hour(queued_at)) AS usual_hour
    FROM scheduled GROUP BY ALL
), schedule_hours AS (
    -- what its jobs would wait at each hour, at each label's median wait then
    SELECT s.checkpoint, s.repo, s.workflow, h.hour, count(*) AS jobs,
        sum(h.median_queue_s) AS queue_s
    FROM scheduled s
    JOIN hourly_queue h ON h.checkpoint = s.checkpoint AND h.runner_label = s.runner_label
    GROUP BY ALL
), schedule_best AS (
    SELECT h.* FROM schedule_hours h
    JOIN schedule_now n USING (checkpoint, repo, workflow)
    WHERE h.jobs = n.jobs
    QUALIFY row_number() OVER (
        PARTITION BY h.checkpoint, h.repo, h.workflow ORDER BY h.queue_s, h.hour) = 1
), schedule_advice AS (
    SELECT n.checkpoint, 'schedule' AS kind,
        'schedule:' || n.repo || ':' || n.workflow AS recommendation_key, n.service,
        n.repo || ' / ' || n.workflow AS entity,
        printf('schedule it at %02d:00 UTC instead of %02d:00 UTC', b.hour, n.usual_hour)
            AS action,
        printf('its %d jobs over %d scheduled runs in %d days waited %.0f min for a runner; at '
            || '%02d:00 UTC the same runners'' median waits come to %.0f min',
            n.jobs, n.runs, c.window_days, n.queue_s / 60, b.hour, b.queue_s / 60) AS evidence,
        (n.queue_s - b.queue_s) / 60 * n.per_month AS saving_minutes, 0.0 AS saving_usd,
        n.queue_s >= c.schedule_queue_ratio * b.queue_s AS qualifies
    FROM schedule_now n
    JOIN schedule_best b USING (checkpoint, repo, workflow)
    CROSS JOIN cfg c
    WHERE n.queue_s > b.queue_s
),

-- hibernate: a non-production environment with no deployment for hibernate_after_days
environment_days AS (
    SELECT k.checkpoint, d.service, d.repo, d.environment,
        max(dcicd_local_day(coalesce(d.deployed_at, d.created_at), (SELECT tz FROM zone)))
            AS last_day,
        count(*) AS deployments
    FROM core.deployments d
    JOIN checkpoints k ON dcicd_local_day(coalesce(d.deployed_at, d.created_at),
        (SELECT tz FROM zone)) <= k.checkpoint
    WHERE NOT d.is_production AND NOT starts_with(d.environment, 'workflow:')
    GROUP BY ALL
), github_statuses AS (
    SELECT json_transform(payload, '{
        "deployment": {"id": "UBIGINT", "environment": "VARCHAR"},
        "deployment_status": {"id": "UBIGINT", "state": "VARCHAR", "created_at": "VARCHAR"},
        "repository": {"full_name": "VARCHAR"}}') AS p
    FROM raw.events
    WHERE source = 'github' AND event_type = 'deployment_status'
), torn_down AS (
    -- GitHub marks a deployment `inactive` when its environment is taken down: an environment
    -- whose latest status is that is hibernated
    SELECT k.checkpoint, p.repository.full_name AS repo, p.deployment.environment AS environment,
        p.deployment_status.state = 'inactive' AS inactive
    FROM github_statuses
    JOIN checkpoints k ON dcicd_local_day(dcicd_ts(p.deployment_status.created_at),
        (SELECT tz FROM zone)) <= k.checkpoint
    QUALIFY row_number() OVER (
        PARTITION BY k.checkpoint, p.repository.full_name, p.deployment.environment
        ORDER BY dcicd_ts(p.deployment_status.created_at) DESC, p.deployment_status.id DESC) = 1
), hibernate_advice AS (
    SELECT e.checkpoint, 'hibernate' AS kind,
        'hibernate:' || e.service || ':' || e.repo || ':' || e.environment
            AS recommendation_key,
        e.service,
        e.service || ' / ' || e.environment AS entity,
        'hibernate the environment (take it down until the next deployment)' AS action,
        printf('no deployment for %d days (the last on %s; %d in all); idle, it runs %d '
            || 'minutes a month at $%.2f an hour', e.checkpoint - e.last_day,
            strftime(e.last_day, '%Y-%m-%d'), e.deployments, 30 * 24 * 60,
            c.environment_usd_per_hour) AS evidence,
        30.0 * 24 * 60 AS saving_minutes, 30.0 * 24 * c.environment_usd_per_hour AS saving_usd,
        true AS qualifies
    FROM environment_days e
    LEFT JOIN torn_down t USING (checkpoint, repo, environment)
    CROSS JOIN cfg c
    WHERE e.checkpoint - e.last_day >= c.hibernate_after_days AND NOT coalesce(t.inactive, false)
), hibernate_withdrawn AS (
    -- deployed again within the period: in use, so the advice is withdrawn (not done)
    SELECT e.checkpoint, 'hibernate' AS kind,
        'hibernate:' || e.service || ':' || e.repo || ':' || e.environment
            AS recommendation_key,
        e.service,
        e.service || ' / ' || e.environment AS entity
    FROM environment_days e, cfg c
    WHERE e.checkpoint - e.last_day < c.hibernate_after_days
), advice AS (
    SELECT * FROM flaky_advice
    UNION ALL BY NAME SELECT * FROM timeout_advice
    UNION ALL BY NAME SELECT * FROM cache_advice
    UNION ALL BY NAME SELECT * FROM runner_advice
    UNION ALL BY NAME SELECT * FROM queue_advice
    UNION ALL BY NAME SELECT * FROM critical_advice
    UNION ALL BY NAME SELECT * FROM schedule_advice
    UNION ALL BY NAME SELECT * FROM hibernate_advice
    UNION ALL BY NAME
    SELECT *, NULL AS action, NULL AS evidence, 0.0 AS saving_minutes, 0.0 AS saving_usd,
        false AS qualifies, true AS withdrawn
    FROM hibernate_withdrawn
)
SELECT a.checkpoint, k.checkpoint_at, k.is_current, a.kind, a.recommendation_key, a.service,
    a.entity, a.action, a.evidence,
    round(a.saving_minutes, 1)::DOUBLE AS saving_minutes_per_month,
    round(a.saving_usd, 2)::DOUBLE AS saving_usd_per_month,
    coalesce(a.qualifies, false) AND (round(a.saving_minutes, 1) >= c.min_saving_minutes_per_month
        OR round(a.saving_usd, 2) >= c.min_saving_usd_per_month) AS listed,
    coalesce(a.withdrawn, false) AS withdrawn
FROM advice a
JOIN checkpoints k USING (checkpoint)
CROSS JOIN cfg c
ORDER BY a.checkpoint DESC, a.kind, a.recommendation_key
