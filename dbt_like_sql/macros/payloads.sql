-- The macros the models use to read provider payloads; they live in the warehouse, so an
-- analyst's query can use them too. Provider timestamps come as RFC 3339,
-- '2016-08-12 15:23:28 UTC', '... +0200' or epoch seconds.
CREATE OR REPLACE MACRO dcicd_ts(v) AS (
    CASE WHEN v IS NULL OR v = '' THEN NULL ELSE coalesce(
        try_cast(v AS TIMESTAMPTZ),
        try_cast(regexp_replace(v, '\s*([+-]\d\d):?(\d\d)$', '\1:\2') AS TIMESTAMPTZ),
        CASE WHEN regexp_full_match(v, '\d+(\.\d+)?') THEN to_timestamp(try_cast(v AS DOUBLE)) END)
    END
);
CREATE OR REPLACE MACRO dcicd_json_kind(j) AS (
    CASE
        WHEN j IS NULL THEN NULL
        WHEN starts_with(j, '"') THEN 'VARCHAR'
        WHEN starts_with(j, '{') THEN 'OBJECT'
        WHEN starts_with(j, '[') THEN 'ARRAY'
        WHEN j = 'null' THEN 'NULL'
        WHEN j IN ('true', 'false') THEN 'BOOLEAN'
        WHEN contains(j, '.') OR contains(j, 'e') OR contains(j, 'E') THEN 'DOUBLE'
        ELSE 'BIGINT'
    END
);
CREATE OR REPLACE MACRO dcicd_conclusion(v) AS (
    CASE
        WHEN v IS NULL THEN NULL
        WHEN lower(v) IN ('success', 'succeeded', 'passed', 'neutral') THEN 'success'
        WHEN lower(v) IN ('failure', 'failed', 'error', 'errored', 'startup_failure') THEN 'failure'
        WHEN lower(v) IN ('cancelled', 'canceled', 'canceling') THEN 'cancelled'
        WHEN lower(v) IN ('skipped') THEN 'skipped'
        WHEN lower(v) IN ('timed_out', 'timeout') THEN 'timed_out'
        ELSE 'other'
    END
);
CREATE OR REPLACE MACRO dcicd_is_production_env(env, configured) AS (
    CASE
        WHEN env IS NULL THEN false
        WHEN len(coalesce(configured, [])) > 0
            THEN list_contains(list_transform(configured, lambda x: lower(x)), lower(env))
        ELSE lower(env) IN ('production', 'prod')
            OR starts_with(lower(env), 'production-') OR starts_with(lower(env), 'prod-')
    END
);
