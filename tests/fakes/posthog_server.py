"""A PostHog capture and flags server that records what the real ``posthog`` client sends.

Serve ``FakePostHog`` with ``tests.live.LiveASGIServer`` and point ``Posthog(host=...)`` at it.
It speaks the wire format of posthog-python 7.x (its request.py and types.py):

- ``POST /batch/``, ``/i/v0/ai/batch/``, ``/i/v0/e/``, ``/capture/``: JSON, gzipped when
  ``Content-Encoding: gzip``; each event is recorded with the ``api_key`` and ``path`` it came
  with.
- ``POST /flags/`` (``?v=4``): the values in ``fake.flags`` as v4 typed records.
- ``GET /flags/definitions``: the same values as definitions a client with a ``secret_key``
  evaluates locally.

And what posthog-js (the browser's SDK, static/vendor/posthog-js) sends, from another origin
(CORS, preflights answered):

- ``POST /e/``, ``/i/v0/e/``: an event or a list of them, gzipped (``?compression=gzip-js``,
  known by gzip's magic bytes) or base64 in a ``data=`` form field, recorded like the others.
- ``POST /s/``: session replay, ``$snapshot`` events whose rrweb events are recorded in
  ``snapshots`` (their compressed parts, ``cv`` "2024-10", decompressed: what a replay holds).
- ``POST /flags/?v=2&config=true``: flags with the session-recording configuration;
  ``GET /array/<key>/config``: the same remote configuration.

``SilentServer`` and ``refused_url()`` stand for a PostHog that never answers and one that is
not there.
"""

import base64
import gzip
import json
import socket
import threading
import time
import uuid
from urllib.parse import parse_qs

CAPTURE_PATHS = ("/batch/", "/i/v0/ai/batch/", "/i/v0/e/", "/capture/", "/e/", "/e")
REPLAY_PATHS = ("/s/", "/s")
# What posthog-js is told to do: record replays, and send them to /s/.
BROWSER_CONFIG = {
    "sessionRecording": {"endpoint": "/s/"},
    "supportedCompression": ["gzip-js"],
    "autocapture_opt_out": True,
    "surveys": False,
    "heatmaps": False,
}


class FakePostHog:
    """An ASGI app. Set ``flags`` to ``{"key": True | False | "variant"}`` before evaluating."""

    def __init__(self):
        self.flags: dict[str, bool | str] = {}
        self.flag_requests: list[dict] = []  # the JSON bodies of POST /flags/
        self.definition_requests: list[dict] = []  # query and headers of GET /flags/definitions
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request
        self._events: list[dict] = []
        self.snapshots: list[dict] = []  # rrweb events of session replays, decompressed
        # The server thread records, the test thread waits: one condition guards both.
        self._changed = threading.Condition()

    # -- what tests read ------------------------------------------------------------------

    def events(self, name: str | None = None) -> list[dict]:
        with self._changed:
            return [e for e in self._events if name is None or e.get("event") == name]

    def wait_for(self, count: int, name: str | None = None, timeout: float = 5.0) -> list[dict]:
        """Wait until at least ``count`` events (named ``name``, if given) have arrived."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                matching = [e for e in self._events if name is None or e.get("event") == name]
                remaining = deadline - time.monotonic()
                if len(matching) >= count or remaining <= 0:
                    break
                self._changed.wait(remaining)
        if len(matching) < count:
            received = [e.get("event") for e in self.events()]
            raise AssertionError(
                f"expected {count} event(s) named {name!r} within {timeout} s, "
                f"got {len(matching)}; all events received: {received}"
            )
        return matching

    def wait_for_snapshots(self, containing: str, timeout: float = 15.0) -> list[dict]:
        """Wait until the replay (rrweb) events that have arrived contain ``containing`` in
        their JSON; all of them."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while containing not in json.dumps(self.snapshots):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"no replay event contains {containing!r} within {timeout} s "
                        f"({len(self.snapshots)} replay event(s) received)"
                    )
                self._changed.wait(remaining)
            return list(self.snapshots)

    def clear(self):
        with self._changed:
            self._events.clear()
            self.snapshots.clear()
            self.flag_requests.clear()
            self.definition_requests.clear()
            self.requests.clear()

    # -- the server -----------------------------------------------------------------------

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        query = parse_qs(scope["query_string"].decode(), keep_blank_values=True)
        headers = {name.decode().lower(): value.decode() for name, value in scope["headers"]}
        with self._changed:
            self.requests.append((method, path))
        cors = _cors(headers)

        if method == "OPTIONS":  # a browser's preflight
            await _respond(send, 200, {}, cors)
        elif method == "POST" and path in CAPTURE_PATHS:
            body = await _read_json(receive, headers)
            self._record(path, body)
            await _respond(send, 200, {"status": 1}, cors)
        elif method == "POST" and path in REPLAY_PATHS:
            body = await _read_json(receive, headers)
            self._record_replay(body)
            await _respond(send, 200, {"status": 1}, cors)
        elif method == "POST" and path in ("/flags/", "/flags"):
            body = await _read_json(receive, headers)
            with self._changed:
                self.flag_requests.append(body)
            response = self._flags_response(body)
            if "config" in query:  # posthog-js asks for its remote configuration too
                response = {**BROWSER_CONFIG, **response}
            await _respond(send, 200, response, cors)
        elif method == "GET" and path.startswith("/array/") and path.endswith("/config"):
            await _respond(send, 200, BROWSER_CONFIG, cors)
        elif method == "GET" and path in ("/flags/definitions", "/flags/definitions/"):
            with self._changed:
                self.definition_requests.append(
                    {"query": query, "authorization": headers.get("authorization")}
                )
            await _respond(send, 200, self._definitions())
        else:
            await _respond(send, 404, {"type": "invalid_request", "detail": "Not found."})

    def _record(self, path: str, body: dict):
        # Batch endpoints wrap events in "batch"; /i/v0/e/ and /capture/ may carry one event;
        # posthog-js sends a list.
        if isinstance(body, list):
            batch, body = body, {}
        else:
            batch = body.get("batch", [body]) if isinstance(body, dict) else []
        with self._changed:
            for event in batch:
                self._events.append(
                    {**event, "api_key": event.get("api_key", body.get("api_key")), "path": path}
                )
            self._changed.notify_all()

    def _record_replay(self, body):
        events = body if isinstance(body, list) else [body]
        snapshots = []
        for event in events:
            properties = event.get("properties", {}) if isinstance(event, dict) else {}
            for item in properties.get("$snapshot_data") or []:
                snapshots.append(_decompressed_snapshot(item))
        with self._changed:
            self.snapshots.extend(snapshots)
            self._changed.notify_all()

    def _flags_response(self, body: dict) -> dict:
        wanted = body.get("flag_keys_to_evaluate") if isinstance(body, dict) else None
        records = {}
        for number, (key, value) in enumerate(self.flags.items(), start=1):
            if wanted is not None and key not in wanted:
                continue
            enabled = value is not False
            records[key] = {
                "key": key,
                "enabled": enabled,
                "variant": value if isinstance(value, str) else None,
                "value": value,
                "failed": False,
                "reason": {
                    "code": "condition_match" if enabled else "no_condition_match",
                    "condition_index": 0,
                    "description": "Matched condition set 1"
                    if enabled
                    else "No matching condition",
                },
                "metadata": {"id": number, "version": 1, "payload": None},
            }
        return {
            "flags": records,
            "errorsWhileComputingFlags": False,
            "requestId": str(uuid.uuid4()),
        }

    def _definitions(self) -> dict:
        definitions = []
        for number, (key, value) in enumerate(self.flags.items(), start=1):
            filters = {"groups": [{"properties": [], "rollout_percentage": 100}]}
            if isinstance(value, str):
                # One variant at 100%: every distinct id hashes into it.
                filters["multivariate"] = {"variants": [{"key": value, "rollout_percentage": 100}]}
            definitions.append(
                {"id": number, "key": key, "active": value is not False, "filters": filters}
            )
        return {"flags": definitions, "group_type_mapping": {"0": "company"}, "cohorts": {}}


async def _read_json(receive, headers):
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = b"".join(chunks)
    if headers.get("content-encoding") == "gzip" or body[:2] == b"\x1f\x8b":
        body = gzip.decompress(body)  # posthog-python's header, or posthog-js's gzip-js
    elif headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        data = parse_qs(body.decode()).get("data", [""])[0]  # posthog-js's base64 form
        body = base64.b64decode(data) if data else body
    return json.loads(body) if body else {}


def _decompressed_snapshot(item):
    """An rrweb event as posthog-js sends it, with its compressed parts (``cv`` "2024-10":
    JSON, gzipped, as a Latin-1 string) opened."""
    if not isinstance(item, dict) or "cv" not in item:
        return item

    def opened(value):
        if isinstance(value, str):
            return json.loads(gzip.decompress(value.encode("latin-1")))
        return value

    data = item.get("data")
    if isinstance(data, str):
        data = opened(data)
    elif isinstance(data, dict):
        data = {key: opened(value) for key, value in data.items()}
    return {**item, "data": data}


def _cors(headers) -> list[tuple[bytes, bytes]]:
    origin = headers.get("origin")
    if not origin:
        return []
    return [
        (b"access-control-allow-origin", origin.encode()),
        (b"access-control-allow-credentials", b"true"),
        (b"access-control-allow-methods", b"GET, POST, OPTIONS"),
        (
            b"access-control-allow-headers",
            headers.get("access-control-request-headers", "content-type").encode(),
        ),
    ]


async def _respond(send, status, payload, extra_headers=()):
    data = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(data))]
    headers.extend(extra_headers)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


class SilentServer:
    """A TCP server on 127.0.0.1 that accepts connections and never answers.

    ``with SilentServer() as server: Posthog(..., host=server.url)``. Connections are held open
    until the block ends, so clients wait for their own timeouts.
    """

    def __init__(self):
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(64)
        self._socket.settimeout(0.05)
        self.port = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.connections: list[socket.socket] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self):
        while not self._stopping.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections.append(connection)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stopping.set()
        self._thread.join(timeout=5)
        for connection in self.connections:
            connection.close()
        self._socket.close()


def refused_url() -> str:
    """An ``http://127.0.0.1:<port>`` URL on which nothing listens (the port was just free)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"
