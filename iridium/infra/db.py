"""Database work on connections that outlive a request: long-lived threads of our own (the
recorder, the progress writer), and asgiref's thread for synchronous work, where answers that
outlive their request or socket are saved.

Without a pool, such a thread keeps its connection from one write to the next: opening one
costs more than most of the writes (a new SQLite connection runs its PRAGMAs; a PostgreSQL one
is a TCP handshake and authentication). With PostgreSQL's pool, it returns the connection after
each write. Request threads close theirs after each request, as Django advises under ASGI. A
kept connection can break under it (the database restarted, or ended it), so each write on one
is made again, once, on a fresh connection.
"""

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.db import InterfaceError, OperationalError, connection


def on_kept_connection(write, *args):
    """`write(*args)` on this thread's kept connection. If that connection has broken (the
    database restarted, or dropped it while idle), it is closed and the write is made once more
    on a new one. `write` must be a transaction of its own, so that a failed one left nothing.

    With a connection pool (PostgreSQL's default here) the connection goes back to the pool
    afterwards, where getting it again costs next to nothing: threads that live long must not
    hold pooled connections between writes, or they starve the requests."""
    try:
        try:
            return write(*args)
        except (InterfaceError, OperationalError):
            if connection.in_atomic_block:
                raise
            connection.close()
            return write(*args)
    finally:
        if pooled() and not connection.in_atomic_block:
            connection.close()


def pooled() -> bool:
    return bool(connection.settings_dict.get("OPTIONS", {}).get("pool"))


def on_a_file() -> bool:
    """The database is a file (SQLite): no server can end its connections under us."""
    return connection.vendor == "sqlite"


async def socket_database_call(func, *args):
    """`func(*args)` in asgiref's database thread, for a socket: as Channels'
    `database_sync_to_async`, which closes that thread's connection before and after (so that
    one a server ended is not used again, and a pooled one goes back to the pool), except where
    the database is a file: there the connection is kept, as answers keep it (opening SQLite
    again runs its PRAGMAs and registers Django's functions)."""
    if on_a_file():
        return await sync_to_async(func)(*args)
    return await database_sync_to_async(func)(*args)


async def on_kept_connection_async(write, *args):
    """`on_kept_connection` in asgiref's thread for synchronous work (where the async ORM runs)."""
    return await sync_to_async(on_kept_connection)(write, *args)


async def reading_again_if_dropped(read):
    """`await read()` (an async ORM read), made once more on a fresh connection if the one it
    found in asgiref's thread had been ended by the database meanwhile."""
    try:
        return await read()
    except (InterfaceError, OperationalError):
        await sync_to_async(_close_connection)()
        return await read()


def give_back_connection() -> None:
    """Before a request waits for work that needs a connection of its own (the answer it
    started, in asgiref's thread): hand the connection of this thread (the request's) back to
    the pool, at the end of the request's last synchronous step. Held while waiting, as many
    such requests at once as the pool has connections would leave none for their answers, and
    each would wait out the pool's timeout. The request takes one again if it needs one after.
    Without a pool nothing waits for connections, and nothing is done."""
    if pooled():
        connection.close()


def _close_connection():
    # `connection` is looked up here, in the thread that runs it: `connection.close` taken in
    # the event loop's thread would be that thread's connection, not the one the read used.
    connection.close()
