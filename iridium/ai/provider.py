"""The openai SDK client, one per event loop, with each HTTP attempt counted.

The SDK's own retry loop (408/409/429/5xx, timeouts, with backoff) is kept; a request hook counts
the attempts of the current call through a context variable so that every retry is recorded.
HTTP goes through the SDK's aiohttp transport: its C parser reads a streamed answer for less CPU
than the default transport's pure-Python one (see docs/performance.md). `close()` closes the
running loop's client; the ASGI application does it when the server shuts down.

The service builds each request's body as the API takes it (iridium.ai.wire), so `stream()` and
`complete()` send it through the SDK's own `post`: auth, retries, errors and transport are the
SDK's, without `chat.completions.create`'s transformation of every parameter, which took more CPU
than the rest of the request at the start of an answer (docs/performance.md).
"""

import asyncio
import contextvars
import weakref
from collections.abc import AsyncIterable, AsyncIterator

import openai
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from openai import AsyncStream
from openai.types.chat import ChatCompletion, ChatCompletionChunk

_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, openai.AsyncOpenAI]" = (
    weakref.WeakKeyDictionary()
)

_closers: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, object]" = (
    weakref.WeakKeyDictionary()
)

# The attempts of the call running in this task: a list the request hook appends to.
current_attempts: contextvars.ContextVar[list | None] = contextvars.ContextVar(
    "iridium_ai_attempts", default=None
)


async def _count_attempt(request):
    attempts = current_attempts.get()
    if attempts is not None:
        attempts.append({"status": None})


async def _note_status(response):
    attempts = current_attempts.get()
    if attempts:
        attempts[-1]["status"] = response.status_code


def client() -> openai.AsyncOpenAI:
    """The client for the running event loop (an HTTP connection pool cannot cross loops).

    It is closed when the loop shuts down (`asyncio.run`, `async_to_sync` and pytest close their
    loops that way), or earlier by `close()`."""
    loop = asyncio.get_running_loop()
    existing = _clients.get(loop)
    if existing is None:
        existing = _clients[loop] = _new_client()
        _close_at_loop_shutdown(loop, existing)
    return existing


# Chat Completions' path, and the SDK's header that asks for the response unread (streamed).
COMPLETIONS_PATH = "/chat/completions"
UNREAD = {"X-Stainless-Raw-Response": "stream"}
BEARER_AUTH = {"bearer_auth": True}  # as `chat.completions.create` authenticates


async def stream(body: dict):
    """Send a streamed request; the SDK's response, whose lines are read as they arrive
    (`lines(response)`), to be closed (`close()`) when done."""
    return await client().post(
        COMPLETIONS_PATH,
        body=body,
        cast_to=ChatCompletion,
        options={"headers": UNREAD, "security": BEARER_AUTH},
        stream=True,
        stream_cls=AsyncStream[ChatCompletionChunk],
    )


def lines(response) -> AsyncIterator[bytes]:
    """The lines of a streamed response as they arrive, without their line ends. The SDK's
    `iter_lines()` decodes each chunk to text and then to lines through three more layers of
    generators; this splits the bytes (a token is a chunk of its own). An answer sent without
    a content encoding (as streamed answers are) is read raw: one generator fewer per token
    than `aiter_bytes`, whose decoder would hand each chunk on unchanged."""
    http = response.http_response
    if http.headers.get("content-encoding", "identity").strip().lower() == "identity":
        return lines_of(http.aiter_raw())
    return lines_of(http.aiter_bytes())


async def lines_of(chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    """The lines of a byte stream cut anywhere: split at "\\n", "\\r\\n" or "\\r" (as
    server-sent events are), ends removed."""
    pending = b""
    async for chunk in chunks:
        if not chunk:
            continue
        found = (pending + chunk).splitlines(keepends=True)
        # The last piece may go on in the next chunk; so may a "\\r" whose "\\n" is to come.
        pending = found.pop() if not found[-1].endswith(b"\n") else b""
        for line in found:
            yield line.rstrip(b"\r\n")
    if pending:
        for line in pending.splitlines():
            yield line


async def complete(body: dict) -> dict:
    """Send a request for a whole answer; the completion as the API returned it."""
    completion = await client().post(
        COMPLETIONS_PATH, body=body, cast_to=ChatCompletion, options={"security": BEARER_AUTH}
    )
    return completion.model_dump()


def _close_at_loop_shutdown(loop, opened: openai.AsyncOpenAI) -> None:
    # An event loop closes the async generators begun in it when it shuts down
    # (`loop.shutdown_asyncgens()`): one waiting here closes the client then.
    async def open_until_shutdown():
        try:
            yield
        finally:
            if not opened.is_closed():
                await opened.close()

    waiting = _closers[loop] = open_until_shutdown()  # the loop itself only keeps a weak ref
    loop.create_task(anext(waiting), name="close the AI client at shutdown")


async def close() -> None:
    """Close the running loop's client and its connections, if it has one."""
    loop = asyncio.get_running_loop()
    _closers.pop(loop, None)
    existing = _clients.pop(loop, None)
    if existing is not None:
        await existing.close()


def _new_client() -> openai.AsyncOpenAI:
    timeout = openai.Timeout(settings.AI_READ_TIMEOUT, connect=settings.AI_CONNECT_TIMEOUT)
    http_client = openai.DefaultAioHttpClient(
        timeout=timeout, event_hooks={"request": [_count_attempt], "response": [_note_status]}
    )
    return openai.AsyncOpenAI(
        # Servers other than OpenAI (the demo provider, Ollama, vLLM) need no key.
        api_key=settings.OPENAI_API_KEY or "not-needed",
        base_url=settings.AI_BASE_URL or None,
        max_retries=settings.AI_MAX_RETRIES,
        timeout=timeout,
        http_client=http_client,
    )


def base_url() -> str:
    return settings.AI_BASE_URL or "https://api.openai.com/v1"


@receiver(setting_changed)
def _forget_clients(setting, **kwargs):
    if setting.startswith(("AI_", "OPENAI_")):
        _clients.clear()
