"""Database work done by a long-lived thread of our own (the recorder, the progress writer).

Such a thread keeps its connection from one write to the next: opening one costs more than most
of the writes (a new SQLite connection runs its PRAGMAs; a PostgreSQL one is a TCP handshake and
authentication). Request threads close theirs after each request, as Django advises under ASGI.
"""

from django.db import InterfaceError, OperationalError, connection


def on_kept_connection(write, *args):
    """`write(*args)` on this thread's kept connection. If that connection has broken (the
    database restarted, or dropped it while idle), it is closed and the write is made once more
    on a new one. `write` must be a transaction of its own, so that a failed one left nothing."""
    try:
        return write(*args)
    except (InterfaceError, OperationalError):
        if connection.in_atomic_block:
            raise
        connection.close()
        return write(*args)
