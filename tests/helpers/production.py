"""Iridium as production runs it, in processes of its own: uvicorn workers with DEBUG off,
PostgreSQL through the pool, Redis, the demo provider and the loopback PostHog server.

Tests that need it call `require_production_services()` first; in CI a missing service fails.
A server takes seconds to start: `start_servers` starts several at once; tests that do not
stop, kill or reconfigure their servers share them (`two_workers`, or `running` in a fixture
of scope "module"). `open_socket`/`open_chat` connect to a server's websockets as a page does.
"""

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import websockets
from django.conf import settings
from django.test import Client

from tests.conftest import require

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, *, timeout: float = 30, process=None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"the process serving :{port} exited") from None
            assert time.monotonic() < deadline, f"nothing listens on :{port}"
            time.sleep(0.05)


def origin_of(address: str) -> str:
    """The Origin header a page served at `address` ("ws://host:port/...", "host:port" or
    "http://host:port") sends with its websockets: the same scheme, host and port."""
    host = re.sub(r"^\w+://", "", address).split("/", 1)[0]
    return f"http://{host}"


def require_production_services() -> None:
    database = settings.DATABASES["default"]
    on_postgresql = database["ENGINE"] == "django.db.backends.postgresql"
    require(on_postgresql and settings.REDIS_URL, "PostgreSQL (DATABASE_URL) and Redis (REDIS_URL)")


def database_url(**changes) -> str:
    """The test database's URL, as a worker process reads it from DATABASE_URL."""
    database = {**settings.DATABASES["default"], **changes}
    user = database["USER"] or "postgres"
    host = database["HOST"] or "127.0.0.1"
    port = database["PORT"] or 5432
    return f"postgres://{user}:{database['PASSWORD'] or ''}@{host}:{port}/{database['NAME']}"


def production_environment(*, ai_base_url: str, posthog_url: str = "", **extra) -> dict:
    """The environment of a production worker, pointed at the test database and services."""
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "POSTHOG_", "DB_"))
    }
    environment.update(
        DEBUG="false",
        # The test process's own key, so that the sessions it makes are valid in the workers.
        SECRET_KEY=settings.SECRET_KEY,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        # Served over plain HTTP on loopback: cookies may not ask for TLS.
        SESSION_COOKIE_SECURE="false",
        CSRF_COOKIE_SECURE="false",
        IRIDIUM_ENV_FILE="/nonexistent",
        DATABASE_URL=database_url(),
        REDIS_URL=settings.REDIS_URL,
        OPENAI_BASE_URL=ai_base_url,
        POSTHOG_API_KEY="phc_test" if posthog_url else "",
        POSTHOG_HOST=posthog_url or "https://us.i.posthog.com",
    )
    environment.update({key: str(value) for key, value in extra.items()})
    return environment


def ai_base_url(demo_provider_server) -> str:
    """The demo provider's address as OPENAI_BASE_URL (what `ai_settings` points the tests at),
    for servers started outside a test (in a fixture of a wider scope)."""
    return demo_provider_server.url + "/v1"


class Server:
    """`uvicorn iridium.asgi:application` with `workers` worker processes, as README runs it.
    Listening once made, unless `wait` is false (then `wait_until_listening()`)."""

    def __init__(
        self,
        environment: dict,
        *,
        workers: int = 1,
        log_level="warning",
        output=None,
        wait: bool = True,
    ):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "uvicorn", "iridium.asgi:application", "--host"]
        command += ["127.0.0.1", "--port", str(self.port), "--log-level", log_level]
        command += ["--ws-per-message-deflate", "false"]
        if workers > 1:
            command += ["--workers", str(workers)]
        # A session of its own: with --workers, the worker processes are its children, and the
        # whole group can be killed (kill_all) whatever state the supervisor is in.
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=environment,
            start_new_session=True,
            stdout=output,
            stderr=subprocess.STDOUT if output is not None else None,
        )
        if wait:
            self.wait_until_listening()

    def wait_until_listening(self) -> None:
        try:
            wait_for_port(self.port, process=self.process)
        except BaseException:
            self.kill_all()
            raise

    def stop(self, sig=signal.SIGTERM, timeout: float = 30) -> int:
        """Stop the server with `sig`; it must exit within `timeout` (it is killed if not, and
        the test fails)."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            # What it is waiting for, on stderr (iridium.infra.serving.dump_tasks_on_signal).
            self.process.send_signal(signal.SIGUSR1)
            time.sleep(1)
            self.kill_all()
            raise

    def kill_all(self) -> None:
        """SIGKILL the server and every process it started."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


def start_servers(environment: dict, count: int, **options) -> list[Server]:
    """`count` servers of `environment`, started at once: their starts overlap."""
    servers = [Server(environment, wait=False, **options) for _ in range(count)]
    try:
        for server in servers:
            server.wait_until_listening()
    except BaseException:
        for server in servers:
            server.kill_all()
        raise
    return servers


@contextlib.contextmanager
def running(environment: dict, count: int = 1, *, graceful: bool = True, **options):
    """`count` servers (started at once) while the block runs. Then, if `graceful`, each is
    stopped with SIGTERM and must exit in time (a failure of the test, or of the last test of a
    module that shares them, if not; the others are stopped all the same); else they are
    killed."""
    servers = start_servers(environment, count, **options)
    try:
        yield servers
    finally:
        failure = None
        for server in servers:
            try:
                if graceful:
                    server.stop()
                else:
                    server.kill_all()
            except BaseException as error:  # stop the others first
                failure = failure or error
        if failure is not None:
            raise failure


@pytest.fixture(scope="module")
def two_workers(django_db_setup, demo_provider_server):
    """Two workers shared by a module's tests, none of which stops or reconfigures them (each
    test has users, conversations and tickets of its own). Stopped with SIGTERM at the end of
    the module, each must exit in time. Not kept for the whole run: their periodic work (the
    heartbeat, recovery) would take locks that later modules' table flushes wait on."""
    require_production_services()
    environment = production_environment(ai_base_url=ai_base_url(demo_provider_server))
    with running(environment, 2) as servers:
        yield servers


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


class Browser:
    """An HTTP client signed in as a user, that sends forms with their CSRF token as a browser
    does (the token read from the page, the cookie kept)."""

    def __init__(self, base_url: str, session: str, *, timeout: float = 30):
        self.client = httpx.Client(
            base_url=base_url,
            cookies={settings.SESSION_COOKIE_NAME: session},
            timeout=timeout,
            headers={"Origin": base_url},
        )

    def post_form(self, page: str, action: str, data: dict) -> httpx.Response:
        form_page = self.client.get(page)
        form_page.raise_for_status()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form_page.text)[1]
        return self.client.post(action, data={"csrfmiddlewaretoken": token, **data})

    def close(self) -> None:
        self.client.close()


def connections_to(database_name: str) -> int:
    """Connections other than this one open to `database_name` right now."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [database_name],
        )
        return cursor.fetchone()[0]


# --- Websockets to a server, as a page opens them ----------------------------------------------


async def open_socket(server, path: str, cookie: str | None, **options):
    """Connect to websocket `path` of `server` as a page served by it does (its origin; the
    session `cookie`, a value of `session_cookie`, if any) and read the first frame, "ready".
    Returns the socket and that frame. `options` go to `websockets.connect`; frames queue
    without limit unless `max_queue` says otherwise (tabs are read one after the other)."""
    headers = {"Cookie": f"{settings.SESSION_COOKIE_NAME}={cookie}"} if cookie else {}
    socket = await websockets.connect(
        f"ws://127.0.0.1:{server.port}{path}",
        additional_headers=headers,
        origin=origin_of(server.url),
        **{"max_queue": None, **options},
    )
    try:
        ready = json.loads(await asyncio.wait_for(socket.recv(), 20))
        assert ready["type"] == "ready", ready
    except BaseException:
        await socket.close()
        raise
    return socket, ready


async def open_chat(server, conversation_id: int, cookie: str | None, **options):
    """`open_socket` for the chat page of conversation `conversation_id`."""
    return await open_socket(server, f"/ws/chat/{conversation_id}/", cookie, **options)


async def open_ticket(server, ticket_id: int, cookie: str | None, **options):
    """`open_socket` for the page of support ticket `ticket_id`."""
    return await open_socket(server, f"/ws/support/tickets/{ticket_id}/", cookie, **options)


async def frames_until(socket, *frame_types: str, timeout: float = 20) -> list[dict]:
    """The frames `socket` receives up to and including the first of one of `frame_types`;
    each must come within `timeout` seconds."""
    frames = []
    while True:
        frame = json.loads(await asyncio.wait_for(socket.recv(), timeout))
        frames.append(frame)
        if frame["type"] in frame_types:
            return frames
