"""The promotion gate: may this sha of this service go to this environment now?

rules.py decides from facts (no I/O), facts.py reads those facts from the warehouse with a few
small queries, audit.py records every verdict in `ops.gates` (through a journal, so answering
never waits for the warehouse's writer), ask.py puts them together for the command line and the
receiver, protection.py answers GitHub's custom deployment protection rules.
"""
