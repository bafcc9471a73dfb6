"""The one PostHog client of this process. Without POSTHOG_API_KEY there is none and nothing
is sent. `capture` only queues: the client's own thread batches, retries and sends.

`$ai_*` events go through the SDK's AI lane (`capture_ai`, PostHog's `/i/v0/ai/batch/`), which
takes events of up to 8 MiB; the ordinary lane drops any event over 900 KiB before sending, and
a chat's `$ai_input` (its window of 40 messages) passes that easily. An event too large even
for the AI lane keeps its figures and has its content shortened, with `contentTruncated: true`,
so that every call reaches PostHog."""

import atexit
import json
import logging
import threading
from collections.abc import Callable

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from posthog import Posthog
from posthog.consumer import AI_MAX_MSG_SIZE

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_client: Posthog | None = None
_configured = False
_before_exit: list[Callable[[], None]] = []
EXIT_FLUSH_SECONDS = 3.0


def run_before_exit(callback: Callable[[], None]) -> None:
    """Run `callback` at process exit before the last events are sent (the recorder's queue)."""
    _before_exit.append(callback)


def client() -> Posthog | None:
    global _client, _configured
    if _configured:
        return _client
    with _lock:
        if not _configured:
            _client = _new_client() if settings.POSTHOG_API_KEY else None
            _configured = True
            if _client is not None:
                # Registered after the client's own exit handler, so it runs before it.
                atexit.register(_final_flush, _client)
    return _client


def _final_flush(posthog_client: Posthog) -> None:
    for callback in _before_exit:
        callback()
    posthog_client.flush(timeout_seconds=EXIT_FLUSH_SECONDS)


def _new_client() -> Posthog:
    return Posthog(
        settings.POSTHOG_API_KEY,
        host=settings.POSTHOG_HOST,
        timeout=settings.POSTHOG_TIMEOUT,
        on_error=_log_delivery_error,
        secret_key=settings.POSTHOG_SECRET_KEY or None,
        # Flags are evaluated in a thread pool (iridium.ai.flags): a request never waits long.
        feature_flags_request_timeout_seconds=settings.POSTHOG_TIMEOUT,
    )


def _log_delivery_error(error, batch):
    logger.warning("PostHog did not take %d event(s): %s", len(batch), error)


# What the SDK adds to an event's properties (library, version, groups...) and the envelope
# (event, distinct id, uuid, timestamp) fit in this margin below the AI lane's limit.
ENVELOPE_BYTES = 64 * 1024
AI_EVENT_BYTES = AI_MAX_MSG_SIZE - ENVELOPE_BYTES
CONTENT_PROPERTIES = ("$ai_input", "$ai_output_choices", "$ai_input_state", "$ai_output_state")
TRUNCATED = " [truncated]"


def capture(event: dict) -> None:
    """Queue one event built by iridium.ai.records; never blocks, never raises."""
    posthog = client()
    if posthog is None:
        return
    name, properties = event["event"], event["properties"]
    if name.startswith("$ai_"):
        send = posthog.capture_ai
        properties = fitted(properties, AI_EVENT_BYTES)
    else:
        send = posthog.capture
    send(
        name,
        distinct_id=event["distinct_id"],
        properties=properties,
        groups=event["groups"] or None,
    )


def capture_exception(event: dict) -> None:
    """Queue an exception for PostHog's error tracking (records.GenerationRecord.to_exception):
    the SDK builds its stack trace here, in the recorder's thread; never raises."""
    posthog = client()
    if posthog is None:
        return
    posthog.capture_exception(
        event["exception"],
        distinct_id=event["distinct_id"],
        properties={
            **event["properties"],
            **({"$groups": event["groups"]} if event["groups"] else {}),
        },
    )


def fitted(properties: dict, max_bytes: int) -> dict:
    """`properties`, or, when their JSON is over `max_bytes`, a copy whose content properties
    (input, output, states) have their long strings shortened, more and more until it fits
    (and as a last resort none), marked `contentTruncated: true`. Figures are never touched."""
    if _size(properties) <= max_bytes:
        return properties
    limit = 65_536
    while limit >= 64:
        shortened = {
            key: _shorten(value, limit) if key in CONTENT_PROPERTIES else value
            for key, value in properties.items()
        }
        shortened["contentTruncated"] = True
        if _size(shortened) <= max_bytes:
            return shortened
        limit //= 4
    kept = {key: value for key, value in properties.items() if key not in CONTENT_PROPERTIES}
    return {**kept, "contentTruncated": True}


def _shorten(value, limit: int):
    if isinstance(value, str):
        return value if len(value) <= limit else value[:limit] + TRUNCATED
    if isinstance(value, list):
        return [_shorten(item, limit) for item in value]
    if isinstance(value, dict):
        return {key: _shorten(item, limit) for key, item in value.items()}
    return value


def _size(properties: dict) -> int:
    return len(json.dumps(properties, default=str).encode())


def flush(timeout: float = 10.0) -> None:
    """Wait (at most `timeout` seconds) until the queued events have been sent."""
    if _client is not None:
        _client.flush(timeout_seconds=timeout)


def reset(flush_timeout: float = 2.0) -> None:
    """Send what is queued (within `flush_timeout`) and start afresh from the settings.

    A PostHog that does not answer cannot hold this up: the old client is shut down in a thread
    of its own, which ends (with the client's consumer threads) once its last attempt is made.
    """
    global _client, _configured
    with _lock:
        old = _client
        if old is not None:
            old.flush(timeout_seconds=flush_timeout)
            atexit.unregister(_final_flush)
            threading.Thread(target=old.shutdown, name="posthog-shutdown", daemon=True).start()
        _client, _configured = None, False


@receiver(setting_changed)
def _reconfigure(setting, **kwargs):
    if setting.startswith("POSTHOG_"):
        reset(flush_timeout=0)
