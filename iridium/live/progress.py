"""Saving the text so far of the answers being written, beside their streams."""

import asyncio
import logging
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

from django.db import connection, connections, transaction
from django.utils import timezone

from iridium.infra.db import on_kept_connection
from iridium.infra.loops import PerLoop

from .models import StreamedAnswer

logger = logging.getLogger(__name__)


class ProgressWriter:
    """Saves the text so far of the answers being written, for all of them at once.

    Each answer notes its text every SNAPSHOT_SECONDS; whatever has been noted is written in one
    transaction, one statement per table with a row per answer, as soon as the previous write
    has finished. With
    hundreds of answers streaming that is a few writes a second instead of an UPDATE, a database
    connection and a thread hop per answer each second. The writes run in a thread of their own
    that keeps its database connection (iridium.infra.db). Only answers still being written are
    updated, so a late write can never overwrite an answer that has finished meanwhile.
    """

    def __init__(self):
        self.pending: dict[tuple[type[StreamedAnswer], int], str] = {}
        self.writing: asyncio.Task | None = None

    def note(self, answer: StreamedAnswer, text: str) -> None:
        self.pending[(type(answer), answer.pk)] = text
        if self.writing is None or self.writing.done():
            self.writing = asyncio.create_task(self._write_pending())

    async def _write_pending(self) -> None:
        while self.pending:
            noted, self.pending = self.pending, {}
            try:
                await asyncio.get_running_loop().run_in_executor(_writer_thread, self._write, noted)
            except Exception:
                logger.exception("could not save the progress of %d answers", len(noted))

    @classmethod
    def _write(cls, noted: dict) -> None:
        on_kept_connection(cls._update, noted)

    @classmethod
    def _update(cls, noted: dict) -> None:
        by_model = defaultdict(list)
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        for (model, pk), text in noted.items():
            by_model[model].append((text, now, int(pk), model.Status.STREAMING))
        # One statement for all of a table's answers, its rows sent at once (executemany):
        # building it with the ORM (a CASE of a WHEN per answer) took milliseconds of CPU a
        # second with hundreds of answers, holding the GIL the event loop's tokens wait for.
        with transaction.atomic(), connection.cursor() as cursor:
            for model, rows in by_model.items():
                cursor.executemany(_update_sql(model), rows)


def _update_sql(model: type[StreamedAnswer]) -> str:
    quote = connection.ops.quote_name
    column = {
        name: quote(model._meta.get_field(name).column)
        for name in ("content", "updated_at", "id", "status")
    }
    return (
        f"UPDATE {quote(model._meta.db_table)} SET {column['content']} = %s, "
        f"{column['updated_at']} = %s WHERE {column['id']} = %s AND {column['status']} = %s"
    )


_writer_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="iridium-progress")
_writers = PerLoop(ProgressWriter)


def close_progress_connection() -> None:
    """Close the progress writer's database connection (a test database is about to go)."""
    _writer_thread.submit(connections.close_all).result()


def writer() -> ProgressWriter:
    """The progress writer of the running event loop."""
    return _writers.get()
