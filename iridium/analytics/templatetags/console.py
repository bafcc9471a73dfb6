"""The console's template filters (iridium.analytics.formatting) and the query strings that
keep the filters in every link."""

from django import template
from django.urls import reverse
from django.utils.html import format_html

from .. import access, formatting

register = template.Library()
register.filter("duration", formatting.duration)
register.filter("money", formatting.money)
register.filter("percent", formatting.percent)


@register.simple_tag(takes_context=True)
def query(context, **changes) -> str:
    """The current query string with `changes` (None or "" removes a parameter)."""
    params = context["request"].GET.copy()
    for key, value in changes.items():
        if value in (None, ""):
            params.pop(key, None)
        else:
            params[key] = value
    encoded = params.urlencode()
    return f"?{encoded}" if encoded else "?"


@register.simple_tag(takes_context=True)
def trace_link(context, trace_id) -> str:
    """A link to an object's AI trace, for those who may open it (nothing for others)."""
    user = context["request"].user
    if not trace_id or not user.is_authenticated or not access.can_view_trace(user, trace_id):
        return ""
    return format_html(
        '<a class="trace-link" href="{}" data-testid="trace-link">AI trace</a>',
        reverse("analytics:trace", args=[trace_id]),
    )


@register.simple_tag(takes_context=True)
def session_link(context, session_id) -> str:
    """A link to a conversation's or ticket's AI session (its answers' traces), for those who
    may open them (nothing for others)."""
    user = context["request"].user
    if not session_id or not user.is_authenticated or not access.can_view_trace(user, session_id):
        return ""
    return format_html(
        '<a class="trace-link" href="{}" data-testid="trace-link">AI traces</a>',
        reverse("analytics:session", args=[session_id]),
    )
