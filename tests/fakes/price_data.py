"""genai-prices' price data as its update URL serves it, and a loopback server that serves it.

`bundled_payload()` writes the library's bundled data in the JSON format of its update URL
(providers as a list, match clauses as `{"or": [...]}`, prices as numbers), which the library's
own reader (`_providers_from_raw`) reads back equal to the bundled data (checked in the tests).
"""

import dataclasses
import datetime
import decimal
import http.server
import json
import threading

from genai_prices import types
from genai_prices.data import providers


def _raw(value):
    if dataclasses.is_dataclass(value):
        return {
            field.name.rstrip("_"): _raw(getattr(value, field.name))  # or_ -> "or", and_ -> "and"
            for field in dataclasses.fields(value)
            if not field.name.startswith("_") and getattr(value, field.name) is not None
        }
    if isinstance(value, types.ModelPrice):
        prices = vars(value).items()
        return {k: _raw(v) for k, v in prices if not k.startswith("_") and v is not None}
    if isinstance(value, list):
        return [_raw(item) for item in value]
    if isinstance(value, dict):
        return {key: _raw(item) for key, item in value.items()}
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    return value


def bundled_payload() -> list:
    return json.loads(json.dumps(_raw(providers)))


def model_entry(payload: list, provider_id: str, model: str) -> dict:
    """The payload's entry for `model` as the bundled data matches it at `provider_id`."""
    [provider] = [p for p in providers if p.id == provider_id]
    info = provider.find_model(model, all_providers=providers)
    [raw_provider] = [p for p in payload if p["id"] == provider_id]
    [entry] = [m for m in raw_provider["models"] if m["id"] == info.id]
    return entry


class PriceDataServer:
    """`with PriceDataServer() as server:` serves `server.body` with `server.status` at any path."""

    def __init__(self):
        self.status = 200
        self.body = b"[]"
        self.requests = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests += 1
                self.send_response(outer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

            def log_message(self, *args):
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}/prices/data.json"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def serve(self, payload, status=200):
        self.status = status
        self.body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
