"""The console's template filters (iridium.analytics.formatting) and the query strings that
keep the filters in every link."""

from django import template

from .. import formatting

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
