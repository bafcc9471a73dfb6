"""Iridium's demo AI provider: a small, deterministic, OpenAI-compatible server.

It is Iridium's default provider when no ``OPENAI_API_KEY`` is set (``manage.py demo_provider``
or ``python -m iridium.demo_provider`` serves it), and the tests drive it through the real
``openai`` SDK over real HTTP, so it speaks the same wire format as the OpenAI API rather than
a look-alike. It is a bare ASGI application: any ASGI server runs it, and many concurrent streams
cost one coroutine each.

Endpoints (everything else answers 404, a known path with the wrong method 405):

``GET /v1/models``
    The fixed list in ``MODELS``.
``POST /v1/chat/completions``
    The Chat Completions API: ``model``, ``messages``, ``stream``,
    ``stream_options.include_usage``, ``tools``, ``tool_choice`` (``"auto"``, ``"none"``,
    ``"required"`` or a named function) and ``max_completion_tokens`` / ``max_tokens`` (a longer
    answer is cut with ``finish_reason="length"``). The reply is always under the ``model``
    requested, whatever its name. Streams are server-sent events of ``chat.completion.chunk``
    objects ending with ``data: [DONE]``: a role chunk, one content chunk per word, a chunk with
    ``finish_reason``, then, with ``include_usage``, a chunk with ``choices: []`` and ``usage``.

What the "model" answers depends only on the request:

- the last message is a user message and tools are allowed (``tools`` given, ``tool_choice`` not
  ``"none"``): a ``[[demo:tool=...]]`` directive decides, otherwise it calls
  ``create_support_ticket`` when the text mentions "ticket", else ``search_knowledge_base`` when
  it says "search", "how do", "how to", "help with" or has a "?" (each only when offered);
  ``tool_choice="required"`` falls back to the first tool and a named ``tool_choice`` forces
  that tool;
- the last messages are tool results: a short answer naming the tools and quoting the result;
- otherwise: ``Demo answer (<model>): you asked about "<question>". `` and a short markdown
  body, with a fenced code block when the question is about code.

Usage is an estimate of four characters a token, so it is stable: ``prompt_tokens`` counts every
message's text, tool-call arguments and the tool schemas; ``completion_tokens`` the answer and
its tool-call arguments.

Directives, written anywhere in the *last user message* (and removed from the text the answer
quotes), let tests and demos choose behaviour; an unknown or malformed directive is a 400:

``[[demo:tool=NAME {"json": "args"}]]``
    Call tool NAME with these arguments (``{}`` when omitted), even one not offered, so callers
    can test how they handle a hallucinated tool. Repeat it for parallel tool calls.
``[[demo:loop]]``
    Call the first offered tool on every turn, after tool results too, as long as tools are
    allowed: for testing step limits.
``[[demo:fault=429]]``
    A rate-limit error, with ``retry-after-ms: 20`` so the SDK's retries are quick.
``[[demo:fault=500]]``
    A server error.
``[[demo:fault=400]]``
    The request rejected, with an error message that quotes the person's message (as real
    providers do when they refuse a prompt): for testing that privacy mode keeps it out.
``[[demo:fault=timeout]]``
    Wait 30 seconds before answering, so the client's read timeout fires first. The wait ends
    as soon as the client hangs up.
``[[demo:fault=cut]]``
    Drop the connection mid-answer: a stream sends its role chunk and a few words, then the
    connection closes without ``[DONE]`` or usage; a plain response sends half its JSON. The
    openai SDK raises ``openai.APIConnectionError`` (a plain response is retried like any dropped
    connection). uvicorn logs "ASGI callable returned without completing response.": expected.
``[[demo:fault=stall]]``
    Go quiet mid-answer: a stream sends its role chunk and a few words, then nothing for 30
    seconds (until the client hangs up), so the client's read timeout fires mid-stream.
``[[demo:slow=SECONDS]]``
    Wait SECONDS before each streamed chunk (instead of the server's ``token_delay``).
``[[demo:first=SECONDS]]``
    Wait SECONDS before answering at all (a stream's headers and first chunk, a plain
    response), as a model does that thinks long before its first token: for testing that a call
    silent that long is still known to be alive.
``[[demo:cached=N]]``
    Report N cached prompt tokens (at most ``prompt_tokens``).
``[[demo:words=N]]``
    Make the answer exactly N words long (up to 10,000), for long streams in benchmarks.
``[[demo:clock]]``
    Stream, in place of each word, the wall-clock time it was sent (``1764300000.123456 ``):
    benchmarks measure the delay each token takes to reach the browser.
"""

import asyncio
import contextlib
import hashlib
import json
import math
import re
import time
import uuid
from collections import deque
from dataclasses import dataclass, field

MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano")

# Bodies beyond this are refused: the demo never needs them, and it bounds memory per request.
MAX_BODY_BYTES = 8 * 1024 * 1024
TIMEOUT_FAULT_SECONDS = 30.0
MAX_SLOW_SECONDS = 60.0
MAX_WORDS = 10_000
CUT_AFTER_WORDS = 3

DIRECTIVE = re.compile(
    r"\[\[demo:(?P<name>[a-z][a-z_-]*)(?:=(?P<value>[^\s\]]*))?(?:\s+(?P<args>\{.*?\}))?\s*\]\]",
    re.DOTALL,
)
FAULTS = ("400", "429", "500", "timeout", "cut", "stall")
CODE_WORDS = re.compile(
    r"\b(code|function|snippet|script|python|javascript|js|typescript|ts|sql|bash|shell)\b",
    re.IGNORECASE,
)
SEARCH_HINTS = ("search", "how do", "how to", "help with", "?")

# Small, fixed snippets: the point is a realistic fenced block for the renderer, not real code.
SNIPPETS = {
    "python": (
        "def demo_answer(question: str) -> str:\n"
        '    """A placeholder written by the demo provider."""\n'
        '    return f"You asked: {question}"\n'
    ),
    "javascript": (
        "function demoAnswer(question) {\n"
        "  // A placeholder written by the demo provider.\n"
        "  return `You asked: ${question}`;\n"
        "}\n"
    ),
    "typescript": (
        "export function demoAnswer(question: string): string {\n"
        "  // A placeholder written by the demo provider.\n"
        "  return `You asked: ${question}`;\n"
        "}\n"
    ),
    "sql": "-- A placeholder written by the demo provider.\nSELECT 'demo answer' AS answer;\n",
    "bash": (
        '#!/usr/bin/env bash\n# A placeholder written by the demo provider.\necho "demo answer"\n'
    ),
}
LANGUAGE_WORDS = {
    "javascript": "javascript",
    "js": "javascript",
    "typescript": "typescript",
    "ts": "typescript",
    "sql": "sql",
    "bash": "bash",
    "shell": "bash",
}
# The rest of a demo answer: what a real model's answer would look like, in Markdown; never
# configuration advice (the page's banner tells whoever runs the install).
PLACEHOLDERS = (
    "A real model would answer here. In short:\n\n- **First**, the main point, in a sentence.\n"
    "- **Then**, the detail that matters most.\n- **Finally**, what to do next.",
    "Here is how a real answer would be laid out:\n\n1. A short summary.\n2. The steps, "
    "one by one.\n3. A note on what to watch for.\n\nThat is all for now.",
    "A real model would explain this in a few paragraphs, with **bold** for the key terms and "
    "`code` where it helps. This placeholder keeps the same shape.",
)


class RequestError(Exception):
    """A request the real API would refuse with 400 invalid_request_error."""

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param


@dataclass
class Directives:
    tools: list[tuple[str, dict]] = field(default_factory=list)
    loop: bool = False
    fault: str | None = None
    slow: float | None = None
    first: float = 0.0
    cached: int = 0
    clock: bool = False
    words: int = 0


@dataclass
class Reply:
    """What the model says, decided before anything is sent, so faults and streams share it."""

    text: str | None
    tool_calls: list[dict]
    finish_reason: str
    usage: dict


class DemoProvider:
    """The ASGI application. ``token_delay`` is the default pause before each streamed chunk."""

    def __init__(self, token_delay: float = 0.0):
        self.token_delay = token_delay
        # Every HTTP request, retries included: tests read it to count the SDK's attempts.
        self.requests_seen = 0
        # The latest chat-completion request bodies, newest last, for tests to inspect.
        self.recent_requests: deque[dict] = deque(maxlen=50)

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
        elif scope["type"] == "http":
            self.requests_seen += 1
            await self._http(scope, receive, send)

    async def _http(self, scope, receive, send):
        respond = _Responder(send)
        path, method = scope["path"], scope["method"]
        if path == "/v1/models":
            if method != "GET":
                await respond.method_not_allowed("GET")
                return
            await respond.json(200, _models())
        elif path == "/v1/chat/completions":
            if method != "POST":
                await respond.method_not_allowed("POST")
                return
            await self._chat_completions(receive, respond)
        else:
            await respond.error(
                404, f"Unknown request URL: {method} {path}.", "invalid_request_error"
            )

    async def _chat_completions(self, receive, respond):
        body = await _read_body(receive)
        if body is None:
            await respond.error(413, "The request body is too large.", "invalid_request_error")
            return
        try:
            request = _parse_request(body)
            self.recent_requests.append(request)
            directives = _parse_directives(_text(_last_user_message(request["messages"])))
            reply = _reply(request, directives)
        except RequestError as error:
            await respond.error(400, error.message, "invalid_request_error", param=error.param)
            return

        if directives.fault == "429":
            await respond.error(
                429,
                "Rate limit reached (demo provider)",
                "rate_limit_error",
                code="rate_limit_exceeded",
                headers=[(b"retry-after-ms", b"20")],
            )
            return
        if directives.fault == "500":
            await respond.error(500, "The demo provider failed on purpose.", "server_error")
            return
        if directives.fault == "400":
            quoted = _text(_last_user_message(request["messages"]))[:200]
            await respond.error(
                400,
                f"Invalid prompt: {quoted!r} was rejected (demo provider).",
                "invalid_request_error",
                code="invalid_prompt",
            )
            return

        hangup = _HangupWatcher(receive)
        try:
            if directives.fault == "timeout" and await hangup.pause(TIMEOUT_FAULT_SECONDS):
                return
            if await hangup.pause(directives.first):
                return
            if request.get("stream"):
                delay = self.token_delay if directives.slow is None else directives.slow
                await _stream(
                    respond,
                    request,
                    reply,
                    delay,
                    hangup,
                    directives.fault in ("cut", "stall"),
                    clock=directives.clock,
                    stall=directives.fault == "stall",
                )
            elif directives.fault == "cut":
                payload = _json_bytes(_completion(request, reply))
                await respond.start(
                    200, "application/json", [(b"content-length", b"%d" % len(payload))]
                )
                await respond.body(payload[: len(payload) // 2], more_body=True)
                # Returning before the promised bytes are sent makes the server close the
                # connection: the client sees a body cut short, like a dropped connection.
            else:
                await respond.json(200, _completion(request, reply))
        finally:
            hangup.stop()


async def _lifespan(receive, send):
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


class _Responder:
    """Sends responses, each carrying an ``x-request-id`` like the real API's."""

    def __init__(self, send):
        self._send = send
        self.request_id = f"req_{uuid.uuid4().hex}"

    async def start(self, status, content_type, headers=()):
        await self._send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", content_type.encode()),
                    (b"x-request-id", self.request_id.encode()),
                    *headers,
                ],
            }
        )

    async def body(self, data: bytes, *, more_body: bool = False):
        await self._send({"type": "http.response.body", "body": data, "more_body": more_body})

    async def json(self, status, payload, headers=()):
        data = _json_bytes(payload)
        await self.start(
            status, "application/json", [(b"content-length", b"%d" % len(data)), *headers]
        )
        await self.body(data)

    async def error(self, status, message, kind, *, param=None, code=None, headers=()):
        payload = {"error": {"message": message, "type": kind, "param": param, "code": code}}
        await self.json(status, payload, headers)

    async def method_not_allowed(self, allowed):
        await self.error(
            405,
            f"Method not allowed: use {allowed}.",
            "invalid_request_error",
            headers=[(b"allow", allowed.encode())],
        )


class _HangupWatcher:
    """Notices the client hanging up while the app waits, so a fault or a slow stream never
    keeps working for a client that is gone (the server drops what is sent after a hang-up)."""

    def __init__(self, receive):
        self._receive = receive
        self.gone = asyncio.Event()
        self._task = asyncio.create_task(self._watch())

    async def _watch(self):
        # The body has been read, so the next message can only be the disconnect.
        while (await self._receive())["type"] != "http.disconnect":
            pass
        self.gone.set()

    async def pause(self, seconds: float) -> bool:
        """Wait up to ``seconds``; return whether the client hung up."""
        if seconds > 0 and not self.gone.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.gone.wait(), seconds)
        return self.gone.is_set()

    def stop(self):
        self._task.cancel()


async def _read_body(receive) -> bytes | None:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _stream(respond, request, reply, delay, hangup, cut, *, clock=False, stall=False):
    await respond.start(200, "text/event-stream; charset=utf-8", [(b"cache-control", b"no-cache")])
    include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
    chunk_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())

    def event(choices, usage=None) -> bytes:
        chunk = {
            "id": chunk_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": request["model"],
            "system_fingerprint": "fp_iridium_demo",
            "choices": choices,
        }
        if include_usage:
            # Like the real API, every chunk carries the key; only the last one a value.
            chunk["usage"] = usage
        return b"data: " + _json_bytes(chunk) + b"\n\n"

    def delta(content: dict, finish_reason=None) -> bytes:
        choice = {"index": 0, "delta": content, "logprobs": None, "finish_reason": finish_reason}
        return event([choice])

    role = {"role": "assistant", "content": "" if reply.text is not None else None}
    await respond.body(delta(role), more_body=True)

    pieces = [delta({"content": word}) for word in _words(reply.text or "")]
    word_count = len(pieces)
    for index, call in enumerate(reply.tool_calls):
        # As the real API does: id, type and name first, then the arguments in fragments.
        head = {"index": index, "id": call["id"], "type": "function"}
        head["function"] = {"name": call["function"]["name"], "arguments": ""}
        pieces.append(delta({"tool_calls": [head]}))
        for fragment in _fragments(call["function"]["arguments"]):
            tail = {"index": index, "function": {"arguments": fragment}}
            pieces.append(delta({"tool_calls": [tail]}))

    cut_at = min(CUT_AFTER_WORDS, len(pieces) - 1) if cut else None
    for number, piece in enumerate(pieces):
        if number == cut_at and stall:
            await hangup.pause(TIMEOUT_FAULT_SECONDS)
            return
        if number == cut_at:
            # Return with the response unfinished: the server closes the connection without
            # the chunked-encoding terminator, so the client sees the stream break off. The
            # openai SDK (3.57, httpx2) raises openai.APIConnectionError while iterating.
            return
        if await hangup.pause(delay):
            return
        if clock and number < word_count:
            piece = delta({"content": f"{time.time():.6f} "})
        await respond.body(piece, more_body=True)

    await respond.body(delta({}, reply.finish_reason), more_body=True)
    if include_usage:
        await respond.body(event([], reply.usage), more_body=True)
    await respond.body(b"data: [DONE]\n\n")


def _completion(request: dict, reply: Reply) -> dict:
    message = {"role": "assistant", "content": reply.text, "refusal": None}
    if reply.tool_calls:
        message["tool_calls"] = reply.tool_calls
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request["model"],
        "system_fingerprint": "fp_iridium_demo",
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": reply.finish_reason,
            }
        ],
        "usage": reply.usage,
    }


def _models() -> dict:
    data = [{"id": m, "object": "model", "created": 0, "owned_by": "iridium-demo"} for m in MODELS]
    return {"object": "list", "data": data}


def _parse_request(body: bytes) -> dict:
    try:
        request = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise RequestError(
            "We could not parse the JSON body of your request. (HINT: This likely means you "
            "aren't using your HTTP library correctly.)"
        ) from None
    if not isinstance(request, dict):
        raise RequestError("The request body must be a JSON object.")
    if not isinstance(request.get("model"), str) or not request["model"]:
        raise RequestError("you must provide a model parameter", "model")
    messages = request.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError("Missing required parameter: 'messages'.", "messages")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise RequestError(
                f"Invalid message at messages[{index}]: a role is required.", f"messages[{index}]"
            )
    tools = request.get("tools")
    if tools is not None and not (
        isinstance(tools, list) and all(isinstance(tool, dict) for tool in tools)
    ):
        raise RequestError("'tools' must be a list of tool objects.", "tools")
    for param in ("max_completion_tokens", "max_tokens"):
        limit = request.get(param)
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            raise RequestError(f"'{param}' must be a positive integer.", param)
    return request


def _parse_directives(text: str) -> Directives:
    directives = Directives()
    for match in DIRECTIVE.finditer(text):
        name, value, args = match["name"], match["value"], match["args"]
        if name == "tool" and value:
            try:
                arguments = json.loads(args) if args else {}
            except ValueError:
                arguments = None
            if not isinstance(arguments, dict):
                raise RequestError(
                    f"Demo directive {match[0]}: the arguments must be a JSON object."
                )
            directives.tools.append((value, arguments))
        elif name == "loop" and value is None:
            directives.loop = True
        elif name == "fault" and value in FAULTS:
            directives.fault = value
        elif name == "slow" and _is_number(value) and 0 <= float(value) <= MAX_SLOW_SECONDS:
            directives.slow = float(value)
        elif name == "first" and _is_number(value) and 0 <= float(value) <= MAX_SLOW_SECONDS:
            directives.first = float(value)
        elif name == "cached" and value and value.isdigit():
            directives.cached = int(value)
        elif name == "clock" and value is None:
            directives.clock = True
        elif name == "words" and value and value.isdigit() and 0 < int(value) <= MAX_WORDS:
            directives.words = int(value)
        else:
            raise RequestError(f"Unknown or malformed demo directive {match[0]}.")
    return directives


def _reply(request: dict, directives: Directives) -> Reply:
    messages = request["messages"]
    model = request["model"]
    tools = request.get("tools") or []
    tool_choice = request.get("tool_choice", "auto")
    question = _without_directives(_text(_last_user_message(messages)))

    calls: list[tuple[str, dict]] = []
    if tools and tool_choice != "none":
        last_role = messages[-1]["role"]
        if directives.loop and last_role in ("user", "tool"):
            calls = [_default_call(_tool_name(tools[0]), question)]
        elif last_role == "user":
            calls = _choose_tools(tools, tool_choice, question, directives)

    if calls:
        tool_calls = [
            {
                "id": _call_id(request, index),
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(arguments)},
            }
            for index, (name, arguments) in enumerate(calls)
        ]
        text, finish_reason = None, "tool_calls"
    else:
        tool_calls = []
        if messages[-1]["role"] == "tool":
            text = _tool_summary(model, messages)
        else:
            text = _answer(model, question)
        if directives.words:
            text = _padded(text, directives.words)
        text, finish_reason = _limit(text, request)

    prompt_tokens = _tokens(_prompt_chars(request))
    arguments_chars = sum(len(call["function"]["arguments"]) for call in tool_calls)
    completion_tokens = _tokens(len(text or "") + arguments_chars)
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {
            "cached_tokens": min(directives.cached, prompt_tokens),
            "audio_tokens": 0,
        },
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }
    return Reply(text, tool_calls, finish_reason, usage)


def _choose_tools(tools, tool_choice, question, directives) -> list[tuple[str, dict]]:
    if directives.tools:
        return directives.tools
    names = [_tool_name(tool) for tool in tools]
    if isinstance(tool_choice, dict):
        forced = (tool_choice.get("function") or {}).get("name")
        return [_default_call(forced, question)] if forced else []
    lowered = question.lower()
    # A ticket request is the more specific intent, so it wins over a search-like question.
    if "create_support_ticket" in names and "ticket" in lowered:
        return [_default_call("create_support_ticket", question)]
    if "search_knowledge_base" in names and any(hint in lowered for hint in SEARCH_HINTS):
        return [_default_call("search_knowledge_base", question)]
    if tool_choice == "required":
        return [_default_call(names[0], question)]
    return []


def _default_call(name: str, question: str) -> tuple[str, dict]:
    if name == "search_knowledge_base":
        return name, {"query": question[:200]}
    if name == "create_support_ticket":
        return name, {"title": question[:60], "description": question}
    return name, {}


def _answer(model: str, question: str) -> str:
    digest = hashlib.sha256(question.encode()).digest()
    rest = PLACEHOLDERS[digest[0] % len(PLACEHOLDERS)]
    text = f'Demo answer ({model}): you asked about "{question[:80]}". {rest}'
    words = {word.lower() for word in CODE_WORDS.findall(question)}
    if words:
        language = next(
            (LANGUAGE_WORDS[word] for word in sorted(words) if word in LANGUAGE_WORDS), "python"
        )
        text += f"\n\nHere is a placeholder {language} snippet:\n\n"
        text += f"```{language}\n{SNIPPETS[language]}```\n"
    return text


def _tool_summary(model: str, messages: list[dict]) -> str:
    """Answer in prose from the tool results that end the conversation, as a real model would:
    the articles found (as links), the ticket filed, or what failed."""
    results = []
    for message in reversed(messages):
        if message["role"] != "tool":
            break
        results.insert(0, message)
    names_by_id = {}
    for message in messages:
        for call in message.get("tool_calls") or []:
            names_by_id[call.get("id")] = (call.get("function") or {}).get("name")
    parts = [
        _tool_prose(names_by_id.get(message.get("tool_call_id")) or "a tool", _text(message))
        for message in results
    ]
    return f"Demo answer ({model}): " + "\n\n".join(parts)


def _tool_prose(name: str, content: str) -> str:
    try:
        data = json.loads(content)
    except ValueError:
        data = None
    if isinstance(data, dict) and "error" in data:
        return f"I tried `{name}`, but it failed: {_sentence(str(data['error']))}"
    if isinstance(data, dict) and isinstance(data.get("results"), list):
        found = [r for r in data["results"] if isinstance(r, dict) and r.get("title")]
        if not found:
            return "I searched the knowledge base but found no article about that."
        first = found[0]
        count = f"{len(found)} article{'s' if len(found) != 1 else ''}"
        excerpt = _sentence(str(first.get("excerpt", "")))
        text = f"I searched the knowledge base and found {count}. The closest is **{_link(first)}**"
        text += f": {excerpt}" if excerpt else "."
        if len(found) > 1:
            text += "\n\nSee also:\n\n" + "\n".join(f"- {_link(r)}" for r in found[1:])
        return text
    if isinstance(data, dict) and "ticket_id" in data:
        number, title = data["ticket_id"], data.get("title", "")
        where = (
            f" You can follow it here: [ticket #{number}]({data['url']})."
            if data.get("url")
            else ""
        )
        return f"I filed support ticket #{number}, **{title}**; support will answer there.{where}"
    if name == "search_knowledge_base":
        return f"I searched the knowledge base: {_sentence(content)}"
    return f"I used `{name}`: {_sentence(content)}"


def _link(result: dict) -> str:
    title = str(result["title"]).replace("[", "(").replace("]", ")")
    return f"[{title}]({result['url']})" if result.get("url") else title


def _sentence(text: str, limit: int = 240) -> str:
    """The first sentence of `text` (Markdown headings left out, line breaks flattened), cut at
    a word boundary with an ellipsis when longer than `limit`."""
    lines = [line.lstrip("> ").strip() for line in text.splitlines()]
    flat = " ".join(line for line in lines if line and not line.startswith("#"))
    end = re.search(r"(?<=[.!?])\s", flat)
    sentence = flat[: end.start()] if end else flat
    if len(sentence) <= limit:
        return sentence
    cut = sentence[:limit].rsplit(" ", 1)[0]
    return cut.rstrip(",;:") + "…"


def _limit(text: str, request: dict) -> tuple[str, str]:
    limit = request.get("max_completion_tokens") or request.get("max_tokens")
    if limit and _tokens(len(text)) > limit:
        return text[: limit * 4], "length"
    return text, "stop"


def _prompt_chars(request: dict) -> int:
    chars = 0
    for message in request["messages"]:
        chars += len(_text(message))
        for call in message.get("tool_calls") or []:
            chars += len(str((call.get("function") or {}).get("arguments") or ""))
    if request.get("tools"):
        chars += len(_json(request["tools"]))
    return chars


def _tokens(chars: int) -> int:
    return max(1, math.ceil(chars / 4))


def _call_id(request: dict, index: int) -> str:
    # Derived from the conversation, so the same request always yields the same ids.
    seed = _json_bytes([request["model"], request["messages"], index])
    return "call_" + hashlib.sha256(seed).hexdigest()[:24]


def _tool_name(tool: dict) -> str:
    return (tool.get("function") or {}).get("name") or tool.get("name") or "tool"


def _last_user_message(messages: list[dict]) -> dict:
    return next((m for m in reversed(messages) if m["role"] == "user"), {})


def _text(message: dict) -> str:
    """A message's text, whether its content is a string or a list of parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text") or "" for part in content if isinstance(part, dict))
    return ""


def _without_directives(text: str) -> str:
    return " ".join(DIRECTIVE.sub(" ", text).split())


def _padded(text: str, count: int) -> str:
    """The answer cut or lengthened (with numbered filler words) to exactly `count` words."""
    words = text.split()
    words += [f"word{index}" for index in range(len(words), count)]
    return " ".join(words[:count])


def _words(text: str) -> list[str]:
    # Each word keeps the whitespace after it, so the pieces join back into the exact text.
    return re.findall(r"\S+\s*|\s+", text)


def _fragments(arguments: str) -> list[str]:
    # At least two fragments, as the real API sends, so clients must concatenate them.
    size = max(1, min(12, len(arguments) // 2))
    return [arguments[i : i + size] for i in range(0, len(arguments), size)]


def _is_number(value: str | None) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except ValueError:
        return False


def _json(payload) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def _json_bytes(payload) -> bytes:
    return _json(payload).encode()
