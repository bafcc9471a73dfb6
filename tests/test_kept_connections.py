"""The threads that write off the request path (the recorder, the progress writer) keep their
database connection between writes (or, with PostgreSQL's pool, return it after each write), and
replace it when the database has dropped it."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import IntegrityError, connection, connections, transaction

from iridium.accounts.models import User
from iridium.infra import db
from iridium.infra.db import on_kept_connection
from tests.conftest import require

pytestmark = pytest.mark.django_db(transaction=True)


def rename(pk, name):
    with transaction.atomic():
        User.objects.filter(pk=pk).update(first_name=name)


def test_without_a_pool_a_write_keeps_the_threads_connection(user, monkeypatch):
    monkeypatch.setattr(db, "pooled", lambda: False)
    with ThreadPoolExecutor(1) as thread:
        thread.submit(on_kept_connection, rename, user.pk, "one").result()
        first = thread.submit(lambda: id(connection.connection)).result()
        thread.submit(on_kept_connection, rename, user.pk, "two").result()
        assert thread.submit(lambda: id(connection.connection)).result() == first
        thread.submit(connections.close_all).result()
    user.refresh_from_db()
    assert user.first_name == "two"


def test_with_a_pool_the_connection_goes_back_after_each_write(user):
    require(db_pool_on(), "PostgreSQL with its pool (DATABASE_URL)")
    with ThreadPoolExecutor(1) as thread:
        thread.submit(on_kept_connection, rename, user.pk, "one").result()
        assert thread.submit(lambda: connection.connection).result() is None
    user.refresh_from_db()
    assert user.first_name == "one"


def db_pool_on() -> bool:
    return connection.vendor == "postgresql" and db.pooled()


def rename_and_tell(pk, name, backends):
    rename(pk, name)
    backends.append(connection.connection.info.backend_pid)


@pytest.mark.parametrize("pooled", [True, False], ids=["pool", "kept"])
def test_a_connection_the_database_dropped_is_replaced_and_the_write_made(
    user, monkeypatch, pooled
):
    require(connection.vendor == "postgresql", "PostgreSQL (a server ending a session)")
    if not pooled:
        monkeypatch.setattr(db, "pooled", lambda: False)
    backends = []
    with ThreadPoolExecutor(1) as thread:
        thread.submit(on_kept_connection, rename_and_tell, user.pk, "one", backends).result()
        # The server ends that session, as a restart or an idle timeout would.
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [backends[0]])
        thread.submit(
            on_kept_connection, rename_and_tell, user.pk, "after the restart", backends
        ).result()
        thread.submit(connections.close_all).result()
    assert backends[-1] != backends[0]
    user.refresh_from_db()
    assert user.first_name == "after the restart"


def test_an_error_that_is_not_the_connections_is_raised_at_once(user):
    calls = []

    def broken():
        calls.append(1)
        with transaction.atomic():
            User.objects.create(username=user.username)  # taken: an IntegrityError

    with ThreadPoolExecutor(1) as thread:
        with pytest.raises(IntegrityError):
            thread.submit(on_kept_connection, broken).result()
        thread.submit(connections.close_all).result()
    assert calls == [1]


def test_a_request_threads_closed_connection_goes_back_to_the_pool():
    """Under ASGI each request's sync code runs in a thread of its own, whose connection is
    closed at the end of the request: on PostgreSQL the next request gets it from the pool."""
    require(connection.vendor == "postgresql", "PostgreSQL (its connection pool)")

    def request_in_a_new_thread():
        with ThreadPoolExecutor(1) as thread:

            def serve():
                with connection.cursor() as cursor:
                    # How old the connection serving this request is.
                    cursor.execute(
                        "SELECT extract(epoch FROM statement_timestamp() - backend_start)"
                        " FROM pg_stat_activity WHERE pid = pg_backend_pid()"
                    )
                    [(age,)] = cursor.fetchall()
                connection.close()  # what Django does when the request ends
                return float(age)

            return thread.submit(serve).result()

    request_in_a_new_thread()  # the pool has at least one connection now
    time.sleep(0.2)
    ages = [request_in_a_new_thread() for _ in range(5)]
    # Without the pool each request would open a connection of its own (a few ms old); the
    # pool hands out connections it already has (which of them, in turn, is the pool's choice).
    assert sum(age > 0.15 for age in ages) >= 4, ages
