"""The analytics console: server-rendered, straight from the generation record. Who may read
what is decided in iridium.analytics.access."""

import csv

from django.http import Http404, StreamingHttpResponse
from django.shortcuts import render

from iridium.ai.models import Generation

from . import access, selectors
from .charts import bar_chart

EXPORT_FIELDS = [
    "created_at", "trace_id", "span_id", "parent_id", "feature", "user_id", "organization_id",
    "plan_id", "provider", "model", "stream", "step", "input_tokens", "output_tokens",
    "cached_tokens", "input_cost_usd", "output_cost_usd", "total_cost_usd", "latency_ms",
    "time_to_first_token_ms", "http_status", "attempts", "is_error", "error", "cache_hit",
    "saved_cost_usd", "estimated_input_tokens", "routing_reason", "variant", "privacy_mode",
]  # fmt: skip


def _period(request) -> tuple[str, object]:
    period = request.GET.get("period", selectors.DEFAULT_PERIOD)
    if period not in selectors.PERIODS:
        period = selectors.DEFAULT_PERIOD
    return period, selectors.period_start(period)


@access.console_required
def dashboard(request):
    period, since = _period(request)
    per_day = selectors.spend_per_day(since=since)
    context = {
        "period": period,
        "periods": selectors.PERIODS,
        "summary": selectors.summary(since=since),
        "per_day": per_day,
        "chart": bar_chart(
            [(row["day"].strftime("%b %d"), float(row["spend"])) for row in per_day],
            label="Spend per day in US dollars",
        ),
        "by_feature": selectors.breakdown(since=since, by="feature"),
        "by_plan": selectors.breakdown(since=since, by="plan"),
        "by_model": selectors.breakdown(since=since, by="model"),
        "top_users": selectors.top_users(since=since),
        "latency": selectors.latency_by_model(since=since),
    }
    return render(request, "analytics/dashboard.html", context)


@access.console_required
def traces(request):
    period, since = _period(request)
    return render(
        request,
        "analytics/traces.html",
        {"period": period, "periods": selectors.PERIODS, "traces": selectors.traces(since=since)},
    )


@access.trace_required
def trace(request, trace_id):
    steps = selectors.trace(trace_id)
    if not steps:
        raise Http404
    return render(
        request,
        "analytics/trace.html",
        {
            "trace_id": trace_id,
            "steps": steps,
            "show_content": access.can_view_content(request.user, trace_id),
            "console": access.can_view_console(request.user),
        },
    )


@access.console_required
def budgets(request):
    """Budgets, flags, prices and plans in one place, with links to change them in admin."""
    from iridium.ai.models import BudgetWarning, FlagOverride, PriceOverride, UnpricedModel

    return render(
        request,
        "analytics/budgets.html",
        {
            **selectors.budgets(),
            "flags": FlagOverride.objects.select_related("updated_by"),
            "prices": PriceOverride.objects.all(),
            "unpriced": UnpricedModel.objects.all()[:50],
            "warnings": BudgetWarning.objects.select_related("user", "organization")[:20],
        },
    )


class _Echo:
    def write(self, value):
        return value


@access.console_required
def export(request):
    """The period's generations as CSV, streamed (no content: prompts and answers stay out)."""
    period, since = _period(request)
    writer = csv.writer(_Echo())
    rows = Generation.objects.filter(created_at__gte=since).order_by("created_at", "pk")

    def lines():
        yield writer.writerow(EXPORT_FIELDS)
        for values in rows.values_list(*EXPORT_FIELDS).iterator(chunk_size=2000):
            yield writer.writerow(values)

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="generations-{period}.csv"'
    return response
