"""What every provider's importer of one scope (repository, project, service) shares: what it
is given, what it counts, and the one rule of landing (files first, state after)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from dcicd_platform.sources.envelopes import EnvelopeWriter
from dcicd_platform.sources.http import ApiClient
from dcicd_platform.sources.state import ImportState


@dataclass
class ScopeImport:
    """One scope's import: subclasses list its objects in `run()`; `counts` says what it found.

    `checkpoint` is called after each landed batch (it flushes the state now and then).
    """

    client: ApiClient
    scope: str
    since: datetime
    now: datetime
    writer: EnvelopeWriter
    state: ImportState
    checkpoint: Callable[[], None] = lambda: None
    counts: Counter = field(default_factory=Counter)

    def run(self) -> Counter:
        raise NotImplementedError

    def _land(self, envelopes: list[dict], puts: list[tuple]) -> None:
        """Write a batch, then (only then) remember what it covers."""
        self.writer.write(envelopes)
        for put in puts:
            self.state.put(*put)
        self.checkpoint()

    @classmethod
    def import_scope(
        cls,
        client: ApiClient,
        scope: str,
        since: datetime,
        now: datetime,
        writer: EnvelopeWriter,
        state: ImportState,
        checkpoint: Callable[[], None],
        counts: Counter | None = None,
        **options: object,
    ) -> Counter:
        """Import one scope; returns what it found, by kind (what `run.Provider` calls).
        `options` set a provider's own fields (GitHub: commit_files).

        Found objects are counted into `counts` as they land, so a caller that passes its own
        Counter still knows what a scope landed when the provider stops it half-way.
        """
        importer = cls(client, scope, since, now, writer, state, checkpoint, **options)
        if counts is not None:
            importer.counts = counts
        return importer.run()
