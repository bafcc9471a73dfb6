"""The provider's wire format (OpenAI Chat Completions): building a request, reading a streamed
answer line by line or a whole one, the usage it reports, and the token estimate made where the
provider reports none.

Streamed answers are read as server-sent-event lines rather than through the SDK's typed chunk
objects, which cost about 0.3 ms a token (docs/performance.md); a whole answer is read from the
same JSON shape (`model_dump()` of the SDK's object), so one parser serves both.
"""

import math
import time

import orjson

from .types import Tool, Usage

DONE = object()  # the end of a stream: `data: [DONE]`
CHARACTERS_PER_TOKEN = 4


def build_request(
    *,
    model: str,
    messages: list[dict],
    parameters: dict,
    tools: list[Tool],
    allow_tools: bool,
    streaming: bool,
) -> dict:
    """The body of one Chat Completions request. With tools offered but no longer allowed (the
    last step of the tool loop), the model must answer in words."""
    request = {"model": model, "messages": messages, **parameters}
    if tools:
        request["tools"] = [tool.schema() for tool in tools]
        request["tool_choice"] = "auto" if allow_tools else "none"
    if streaming:
        request["stream"] = True
        request["stream_options"] = {"include_usage": True}
    return request


def parameters(*, temperature: float | None, max_output_tokens: int | None) -> dict:
    found = {}
    if temperature is not None:
        found["temperature"] = temperature
    if max_output_tokens is not None:
        found["max_completion_tokens"] = max_output_tokens
    return found


def event_data(line: bytes):
    """The JSON object of one server-sent-events line (bytes, as read); DONE at the end; None
    for other lines. An error event mid-stream raises StreamError, as the SDK does."""
    if not line.startswith(b"data:"):
        return None
    data = line[5:].strip()
    if data == b"[DONE]":
        return DONE
    chunk = orjson.loads(data)
    if isinstance(chunk, dict) and chunk.get("error"):
        error = chunk["error"]
        message = error.get("message") if isinstance(error, dict) else str(error)
        raise StreamError(message or "the provider sent an error event")
    return chunk


class StreamError(Exception):
    """The provider reported an error in the middle of a stream."""


class CutStream(Exception):
    def __str__(self):
        return "the stream ended before the answer was complete"


def usage_from(reported: dict | None) -> Usage | None:
    """The usage a provider reported (a `usage` object of the wire format), or None."""
    if not reported:
        return None
    details = reported.get("prompt_tokens_details") or {}
    return Usage(
        input_tokens=reported.get("prompt_tokens") or 0,
        output_tokens=reported.get("completion_tokens") or 0,
        cached_tokens=details.get("cached_tokens") or 0,
    )


def estimate_tokens(characters: int) -> int:
    """About four characters a token: the estimate made before a call (to compare with what the
    provider counts) and for answers whose usage never came (stopped or cut streams)."""
    return math.ceil(characters / CHARACTERS_PER_TOKEN)


def message_characters(messages: list[dict]) -> int:
    return sum(len(str(message.get("content") or "")) for message in messages)


def estimate_usage(messages: list[dict], output: str) -> Usage:
    return Usage(
        input_tokens=estimate_tokens(message_characters(messages)),
        output_tokens=estimate_tokens(len(output)),
    )


def assistant_message(text: str, tool_calls: list[dict]) -> dict:
    message: dict = {"role": "assistant", "content": text or None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return message


class Answer:
    """What has arrived of one provider answer, streamed chunk by chunk or whole."""

    def __init__(self, started: float):
        self.started = started
        self.parts: list[str] = []
        self.tool_fragments: dict[int, dict] = {}
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self.time_to_first_token_ms: float | None = None
        self.answering = False  # the provider accepted the request and is streaming

    @property
    def text(self) -> str:
        return "".join(self.parts)

    @property
    def length(self) -> int:
        return sum(len(part) for part in self.parts)

    @property
    def characters(self) -> int:
        """How much has arrived so far: the text and the tool calls' arguments."""
        arguments = sum(len(a) for slot in self.tool_fragments.values() for a in slot["arguments"])
        return self.length + arguments

    @property
    def produced(self) -> bool:
        return bool(self.parts or self.tool_fragments)

    def take(self, chunk: dict) -> str:
        """Take one streamed chunk (the JSON object the provider sent); its new text."""
        if chunk.get("usage"):
            self.usage = usage_from(chunk["usage"])
        delta_text = ""
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            if delta.get("content"):
                delta_text += delta["content"]
            for fragment in delta.get("tool_calls") or ():
                self._take_tool_fragment(fragment)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        if (delta_text or self.tool_fragments) and self.time_to_first_token_ms is None:
            self.time_to_first_token_ms = (time.perf_counter() - self.started) * 1000
        if delta_text:
            self.parts.append(delta_text)
        return delta_text

    def take_whole(self, completion: dict) -> None:
        """Take a whole (not streamed) answer, as the JSON object the provider sent."""
        choice = (completion.get("choices") or [{}])[0]
        message = choice.get("message") or {}
        self.parts.append(message.get("content") or "")
        for index, call in enumerate(message.get("tool_calls") or ()):
            self._take_tool_fragment({"index": index, **call})
        self.finish_reason = choice.get("finish_reason")
        self.usage = usage_from(completion.get("usage"))

    def _take_tool_fragment(self, fragment: dict) -> None:
        slot = self.tool_fragments.setdefault(
            fragment.get("index", 0), {"id": "", "name": "", "arguments": []}
        )
        function = fragment.get("function") or {}
        if fragment.get("id"):
            slot["id"] = fragment["id"]
        if function.get("name"):
            slot["name"] = function["name"]
        if function.get("arguments"):
            slot["arguments"].append(function["arguments"])

    def tool_calls(self) -> list[dict]:
        return [
            {
                "id": slot["id"],
                "type": "function",
                "function": {"name": slot["name"], "arguments": "".join(slot["arguments"])},
            }
            for _, slot in sorted(self.tool_fragments.items())
        ]

    def message(self) -> dict | None:
        """The answer as an assistant message (what `$ai_output_choices` holds), if any."""
        if not self.produced:
            return None
        return assistant_message(self.text, self.tool_calls())
