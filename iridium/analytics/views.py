"""The analytics console: server-rendered, straight from the generation record. Who may read
what is decided in iridium.analytics.access."""

import csv
from datetime import datetime, time, timedelta
from decimal import Decimal

from django.http import Http404, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone

from iridium.accounts import audit

from . import access, charts, comparisons, owners, selectors, timeline
from .filters import HOURLY, PERIODS, FilterForm, Filters

EXPORT_FIELDS = [
    "created_at", "trace_id", "span_id", "parent_id", "feature", "user_id", "organization_id",
    "plan_id", "provider", "model", "stream", "step", "input_tokens", "output_tokens",
    "cached_tokens", "input_cost_usd", "output_cost_usd", "total_cost_usd", "latency_ms",
    "time_to_first_token_ms", "http_status", "attempts", "is_error", "error", "cache_hit",
    "saved_cost_usd", "estimated_input_tokens", "routing_reason", "variant", "privacy_mode",
]  # fmt: skip


def _filtered(request, *, with_day=False) -> tuple[FilterForm, str, datetime, Filters]:
    form = FilterForm(request.GET, with_day=with_day)
    return form, form.selected_period, selectors.period_start(form.selected_period), form.filters


def _common(form, period) -> dict:
    return {"form": form, "period": period, "periods": PERIODS}


@access.console_required
def dashboard(request):
    form, period, since, filters = _filtered(request)
    hourly = period in HOURLY
    figures = selectors.dashboard(since=since, hourly=hourly, filters=filters)
    rows = figures["rows"]
    # Today is drawn as the whole day, the hours to come empty.
    axis = (
        selectors.buckets(since=since, hourly=True, until=since.replace(hour=23))
        if period == "today"
        else None
    )
    chart_list, chart_data = charts.build(rows, hourly=hourly, axis=axis)
    context = {
        **_common(form, period),
        "summary": selectors.summary_of(rows),
        "charts": chart_list,
        "chart_data": chart_data,
        "by": figures["by"],
        "latency": figures["latency"],
    }
    return render(request, "analytics/dashboard.html", context)


@access.console_required
def experiments(request):
    """Experiment variants side by side, and what the spend buys (ROI, support deflection)."""
    form, period, since, filters = _filtered(request)
    satisfaction = comparisons.satisfaction(since=since, filters=filters)
    return render(
        request,
        "analytics/experiments.html",
        {
            **_common(form, period),
            "variants": comparisons.with_satisfaction(
                comparisons.variants(since=since, filters=filters), satisfaction["variant"]
            ),
            "satisfaction": satisfaction,
            "features": comparisons.per_feature(since=since, filters=filters),
            "outcomes": comparisons.outcomes(since=since, filters=filters),
        },
    )


@access.console_required
def traces(request):
    form, period, since, filters = _filtered(request, with_day=True)
    until = None
    if form.selected_day:
        zone = timezone.get_current_timezone()
        since = datetime.combine(form.selected_day, time.min, tzinfo=zone)
        until = since + timedelta(days=1)
    return render(
        request,
        "analytics/traces.html",
        {
            **_common(form, period),
            "traces": selectors.traces(since=since, until=until, filters=filters),
        },
    )


@access.trace_required
def trace(request, trace_id):
    """One trace: its timeline, and its messages where privacy allows and the viewer may."""
    show_content = access.can_view_content(request.user, trace_id)
    found = timeline.build(trace_id, with_content=show_content)
    if found is None:
        raise Http404
    if found.content_shown and found.subject != request.user:
        audit.record(request.user, audit.READ_TRACE_CONTENT, trace_id, subject=found.subject)
    return render(
        request,
        "analytics/trace.html",
        {
            "trace_id": trace_id,
            "timeline": found,
            "width": timeline.WIDTH,
            "show_content": show_content,
            "console": access.can_view_console(request.user),
            "owner": owners.describe(request.user, trace_id),
        },
    )


@access.trace_required
def session(request, session_id):
    """A session (a conversation, a ticket): its turns, each a trace of its own. Figures only,
    so it is open to whoever may open its traces."""
    turns = selectors.session(session_id)
    if not turns:
        raise Http404
    return render(
        request,
        "analytics/session.html",
        {
            "session_id": session_id,
            "turns": turns,
            "cost": sum((turn["cost"] for turn in turns), Decimal(0)),
            "calls": sum(turn["calls"] for turn in turns),
            "errors": sum(turn["errors"] for turn in turns),
            "console": access.can_view_console(request.user),
            "owner": owners.describe(request.user, session_id),
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
    """The period's generations that pass the filters as CSV, streamed (no content: prompts
    and answers stay out, and errors are whole only for who may read content)."""
    _, period, since, filters = _filtered(request)
    audit.record(request.user, audit.EXPORT_CSV, f"generations {period}",
                 detail=request.GET.urlencode())  # fmt: skip
    writer = csv.writer(_Echo())
    rows = filters.rows(selectors.in_period(since)).order_by("created_at", "pk")
    content = access.can_view_any_content(request.user)
    error, status = EXPORT_FIELDS.index("error"), EXPORT_FIELDS.index("http_status")

    def lines():
        yield writer.writerow(EXPORT_FIELDS)
        for values in rows.values_list(*EXPORT_FIELDS).iterator(chunk_size=2000):
            values = list(values)
            values[error] = access.error_shown(values[error], status=values[status],
                                               content=content)  # fmt: skip
            yield writer.writerow(values)

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="generations-{period}.csv"'
    return response
