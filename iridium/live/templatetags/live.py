"""Template filters of iridium.live: `{{ tool|tool_note }}` renders a tool's note under an
answer (iridium.live.tool_notes)."""

from django import template

from .. import tool_notes

register = template.Library()


@register.filter
def tool_note(tool: dict):
    return tool_notes.html(tool)
