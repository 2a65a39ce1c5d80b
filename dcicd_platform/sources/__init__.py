"""History import: the providers' REST APIs into landing/ as envelopes (CONTRACTS.md section 2).

`http.py` asks (httpx, with tenacity's retries, rate-limit waits and conditional requests),
`envelopes.py` writes what it got as landing files, `state.py` remembers what is known in
`ops.import_state`, one module per provider lists its objects, `run.py` ties them to the
command line and the assets. Nothing here reads the SQL models: imported objects take the same
path in as webhooks.
"""
