"""Tables the SQL models read that the application writes: shown in the lineage, not built."""

import dagster as dg

ops_actions = dg.AssetSpec(
    key=["ops", "actions"],
    description="The automation's audit: every decision (rollback, alert, model rollback, "
    "re-run, platform alert), taken or not, with its guardrail outcome. Written by the response "
    "jobs, each decision recorded here as a materialization with the day's decisions in its "
    "metadata; the DORA marts read the rollbacks it executed (its data version follows them).",
    group_name="ops",
    kinds={"duckdb"},
    owners=["team:platform"],
)
