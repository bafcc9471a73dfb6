"""A real ASGI server (uvicorn, HTTP and websockets) in a thread, and a real Chromium."""

import os
import shutil
import socket
import threading
import time

import pytest

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class LiveASGIServer:
    def __init__(self, app):
        import uvicorn

        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, lifespan="on", log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    def start(self):
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the test ASGI server did not start")
            time.sleep(0.01)

    def stop(self):
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()


@pytest.fixture(scope="session")
def asgi_server(django_db_setup, django_db_blocker):
    from iridium.asgi import application

    server = LiveASGIServer(application)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def live_url(asgi_server, transactional_db, plans):
    return asgi_server.url


def chromium_path() -> str:
    path = (
        os.environ.get("CHROMIUM_PATH")
        or shutil.which("chromium")
        or shutil.which("chromium-browser")
    )
    if not path:
        pytest.fail("Chromium is missing: install Debian's chromium package (make browser).")
    return path


@pytest.fixture
def browser(live_url, monkeypatch):
    """A headless Chromium for one test.

    Playwright's sync API keeps an event loop marked as running on the main thread while it is
    open, which Django's async-safety guard mistakes for ORM calls from async code; the guard is
    lifted for the browser test only (as pytest-playwright advises), never for other tests.
    While the browser is open the ORM also hands this thread a connection of its own that is
    never closed, so a browser test requests its database fixtures before `browser`.
    """
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


async def run_lifespan(app) -> list[str]:
    """Start and stop `app` as an ASGI server does; the types of what it sent back."""
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent = []

    async def receive():
        return incoming.pop(0)

    async def send(message):
        sent.append(message["type"])

    await app({"type": "lifespan"}, receive, send)
    return sent
