"""From envelope files on disk to rows in raw.events and raw.quarantine."""
