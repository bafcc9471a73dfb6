"""One trace as people read it: a timeline of its provider calls and tool steps (when each
started, how long it took, what it cost) and each call's messages as a transcript (roles,
Markdown rendered by the project's renderer, tool calls and their results)."""

import json
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from iridium.infra.markdown import render

from .access import error_shown
from .selectors import trace as trace_steps

WIDTH = 1000  # the timeline's bars are drawn in SVG user units, 0..WIDTH across


@dataclass
class Turn:
    role: str
    html: str = ""
    code: str = ""  # a tool's result that is JSON, pretty-printed
    tool_calls: list[dict] = field(default_factory=list)  # name, arguments (pretty JSON)
    tool_call_id: str = ""


@dataclass
class Step:
    item: object  # a Generation or a Span
    kind: str  # "generation" or "span"
    depth: int
    offset_ms: float
    x: float
    width: float
    transcript: list[Turn] = field(default_factory=list)
    earlier: int = 0  # messages of this call's input already shown with an earlier call
    tool_input: str = ""
    tool_output: str = ""
    error: str = ""  # the step's error as the viewer may read it (access.error_shown)


@dataclass
class Timeline:
    steps: list[Step]
    total_ms: float
    cost: Decimal
    input_tokens: int
    output_tokens: int
    calls: int
    errors: int
    users: list[str]
    feature: str
    session_id: str  # the conversation or ticket the turn belongs to ("" when it stands alone)
    subject: object  # the person whose calls these are (the first call's), or None
    content_shown: bool  # whether any prompt, answer or tool state is on the page


def _text(content) -> str:
    """A message's content: a string, or OpenAI content parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n\n".join(
            part.get("text", "") if isinstance(part, dict) else str(part) for part in content
        )
    return str(content)


def _pretty(value) -> str:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


def transcript(messages) -> list[Turn]:
    """OpenAI-style messages as turns, their text rendered as Markdown (sanitised)."""
    turns = []
    for message in messages or []:
        if not isinstance(message, dict):
            turns.append(Turn(role="unknown", html=render(str(message))))
            continue
        calls = []
        for call in message.get("tool_calls") or []:
            function = call.get("function", {}) if isinstance(call, dict) else {}
            calls.append(
                {"name": function.get("name", "?"), "arguments": _pretty(function.get("arguments"))}
            )
        role = str(message.get("role", "unknown"))
        text = _text(message.get("content"))
        turn = Turn(
            role=role, tool_calls=calls, tool_call_id=str(message.get("tool_call_id") or "")
        )
        pretty = _pretty(text) if role == "tool" else text
        if pretty != text:
            turn.code = pretty
        else:
            turn.html = render(text)
        turns.append(turn)
    return turns


def _depths(items) -> dict[str, int]:
    by_id = {item.span_id: item for item in items}
    depths: dict[str, int] = {}

    def depth(item, seen=()) -> int:
        if item.span_id in depths:
            return depths[item.span_id]
        parent = by_id.get(item.parent_id)
        value = (
            0
            if parent is None or parent.span_id in seen
            else 1 + depth(parent, (*seen, item.span_id))
        )
        depths[item.span_id] = min(value, 3)
        return depths[item.span_id]

    for item in items:
        depth(item)
    return depths


def build(trace_id: str, *, with_content: bool) -> Timeline | None:
    items = trace_steps(trace_id)
    if not items:
        return None
    start = min(item.created_at for item in items)
    end = max(item.created_at + timedelta(milliseconds=item.latency_ms) for item in items)
    total_ms = max((end - start).total_seconds() * 1000, 0.001)
    depths = _depths(items)
    steps = []
    shown: list = []  # the messages the calls so far sent and got
    for item in items:
        offset = (item.created_at - start).total_seconds() * 1000
        step = Step(
            item=item,
            kind=item.kind,
            depth=depths[item.span_id],
            offset_ms=offset,
            x=round(offset / total_ms * WIDTH, 1),
            width=round(max(item.latency_ms / total_ms * WIDTH, 2), 1),
            error=error_shown(
                item.error, status=getattr(item, "http_status", None), content=with_content
            ),
        )
        if with_content and not item.privacy_mode:
            if item.kind == "generation":
                sent = item.input if isinstance(item.input, list) else [item.input]
                sent = [m for m in sent if m is not None]
                # A call's input repeats the conversation so far: show only what is new since
                # the call before (its input and answer), so a long chat reads once, not n² times.
                if shown and sent[: len(shown)] == shown:
                    step.earlier = len(shown)
                step.transcript = transcript(sent[step.earlier :]) + transcript(item.output)
                answer = item.output if isinstance(item.output, list) else []
                shown = sent + answer
            else:
                step.tool_input = _pretty(item.input_state)
                step.tool_output = _pretty(item.output_state)
        steps.append(step)
    generations = [item for item in items if item.kind == "generation"]
    return Timeline(
        steps=steps,
        total_ms=total_ms,
        cost=sum((g.total_cost_usd or Decimal(0) for g in generations), Decimal(0)),
        input_tokens=sum(g.input_tokens for g in generations),
        output_tokens=sum(g.output_tokens for g in generations),
        calls=sum(1 for g in generations if not g.cache_hit),
        errors=sum(1 for item in items if item.is_error),
        users=sorted({g.user.get_username() for g in generations if g.user}),
        feature=items[0].feature,
        session_id=next((item.session_id for item in items if item.session_id), ""),
        subject=next((g.user for g in generations if g.user), None),
        content_shown=any(step.transcript or step.tool_input for step in steps),
    )
