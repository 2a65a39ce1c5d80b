"""History import: the providers' REST APIs into landing/ as envelopes (CONTRACTS.md section 2)."""
