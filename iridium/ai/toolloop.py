"""The tool loop: provider calls and tool runs until the model answers in words or the step
limit is reached (on the last allowed step the model may no longer call tools). Tools act for
the call's user, whatever the model puts in their arguments."""

import json
import logging
import time
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from . import wire
from .call import ZERO_COST, Call, new_span_id
from .step import StepResult, error_detail, provider_step
from .types import Cost, ToolCalled, ToolContext, ToolFailed, Usage

logger = logging.getLogger(__name__)
# A failed tool step's error as recorded in privacy mode (its own text may quote the person).
TOOL_FAILED = "The tool failed."
# A tool the model named but was not offered, as recorded in privacy mode (the name is the
# model's text, which may quote the person).
UNKNOWN_TOOL = "unknown"


@dataclass
class LoopResult:
    """The last item the loop yields, after its `TextDelta`s and `ToolCalled`s."""

    text: str = ""
    finish_reason: str = "stop"
    usage: Usage = field(default_factory=Usage)
    cost: Cost | None = ZERO_COST
    tool_calls: list[ToolCalled] = field(default_factory=list)


async def answer(call: Call, conversation: list[dict], root_span: str, result: LoopResult):
    """Yield `TextDelta`s and `ToolCalled`s as they come; `result` holds the answer so far (so
    that what a failed or stopped answer produced is known to the caller)."""
    for step in range(1, call.max_steps + 1):
        step_result: StepResult | None = None
        async with aclosing(provider_step(call, conversation, step, root_span)) as items:
            async for item in items:
                if isinstance(item, StepResult):
                    step_result = item
                else:
                    yield item
        result.usage += step_result.usage
        result.cost = (
            result.cost + step_result.cost
            if (result.cost is not None and step_result.cost is not None)
            else None
        )
        result.text, result.finish_reason = step_result.text, step_result.finish_reason
        if not step_result.tool_calls:
            return
        conversation.append(wire.assistant_message(step_result.text, step_result.tool_calls))
        for tool_call in step_result.tool_calls:
            called = await run_tool(call, tool_call, root_span)
            result.tool_calls.append(called)
            yield called
            conversation.append(
                {
                    "role": "tool",
                    "tool_call_id": tool_call["id"],
                    "content": json.dumps(called.result, default=str),
                }
            )


async def run_tool(call: Call, tool_call: dict, parent_id: str) -> ToolCalled:
    name = tool_call["function"]["name"]
    created_at = timezone.now()
    started = time.perf_counter()
    arguments: Any = {}
    is_error = True
    tool = next((t for t in call.request.tools if t.name == name), None)
    try:
        arguments = json.loads(tool_call["function"]["arguments"] or "{}")
        if not isinstance(arguments, dict):
            raise ValueError("arguments must be a JSON object")
    except ValueError:
        result = {"error": "The tool arguments were not a valid JSON object."}
    else:
        if tool is None:
            result = {"error": f"There is no tool named {name!r}."}
        else:
            context = ToolContext(
                user=call.caller.user, trace_id=call.trace_id, feature=call.feature
            )
            try:
                result = await tool.run(arguments, context)
                is_error = False
            except ToolFailed as failure:
                result = {"error": str(failure)}
            except Exception as failure:
                if call.privacy:  # the exception's text may hold what the person wrote
                    logger.error(
                        "tool %s failed (trace %s): %s",
                        name,
                        call.trace_id,
                        error_detail(failure, private=True),
                    )
                else:
                    logger.exception("tool %s failed (trace %s)", name, call.trace_id)
                result = {"error": "The tool failed."}
    call.record_span(
        span_id=new_span_id(),
        parent_id=parent_id,
        name=f"tool:{UNKNOWN_TOOL if tool is None and call.privacy else name}",
        created_at=created_at,
        latency_ms=(time.perf_counter() - started) * 1000,
        input_state=arguments,
        output_state=result,
        is_error=is_error,
        error=(TOOL_FAILED if call.privacy else result.get("error", "")) if is_error else "",
    )
    return ToolCalled(name=name, arguments=arguments, result=result, is_error=is_error)
