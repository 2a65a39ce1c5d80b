-- The reporting calendar (CONTRACTS.md section 4): a moment's day, ISO week (Monday) and month
-- are those of its wall-clock time in the reporting time zone, so a day across a
-- daylight-saving change is 23 or 25 hours long and a deployment at 00:30 in Berlin is on
-- Berlin's day, not the UTC one before. Stored times stay UTC and every session stays UTC: the
-- zone is always passed, and a model passes the configured one as
--     (SELECT time_zone FROM config.reporting)
-- so its lineage names config.reporting (a changed zone rebuilds it). A naive TIMESTAMP is
-- taken as UTC (the session's zone), never as the reporting zone's wall clock.
CREATE OR REPLACE MACRO dcicd_local_day(ts, zone) AS (
    timezone(zone, ts::TIMESTAMPTZ)::DATE
);
-- The first day of the day, ISO week or month (`grain`) the moment falls in.
CREATE OR REPLACE MACRO dcicd_period_start(grain, ts, zone) AS (
    date_trunc(grain, timezone(zone, ts::TIMESTAMPTZ))::DATE
);
-- The moment a local day begins (its midnight in the zone), as a UTC TIMESTAMPTZ: the bound to
-- compare stored times with.
CREATE OR REPLACE MACRO dcicd_day_start(day, zone) AS (
    timezone(zone, day::DATE::TIMESTAMP)
);
