"""The console's charts as data: what each chart shows, its series and the table behind it.
Chart.js draws them in the page (static/js/console-charts.js); nothing is drawn here."""

from dataclasses import dataclass
from datetime import datetime

from django.utils import formats
from django.utils.html import format_html_join

from .formatting import duration, money, percent


@dataclass(frozen=True)
class Series:
    key: str
    label: str


@dataclass(frozen=True)
class Chart:
    id: str
    title: str
    unit: str  # usd, count, ms, percent, tokens: how values are printed
    kind: str  # bar or line
    series: tuple[Series, ...]
    stacked: bool = False


CHARTS = [
    Chart("spend", "Spend", "usd", "bar", (Series("spend", "Spend"),)),
    Chart("calls", "Provider calls and errors", "count", "bar",
          (Series("calls", "Calls"), Series("errors", "Errors"))),
    Chart("latency", "Latency of successful calls", "ms", "line",
          (Series("p50", "p50"), Series("p95", "p95"), Series("ttft_p50", "First token p50"))),
    Chart("error-rate", "Error rate", "percent", "line",
          (Series("error_rate", "Errors per call"),)),
    Chart("cache", "Cache hit rate", "percent", "line",
          (Series("cache_hit_rate", "Requests answered from the cache"),)),
    Chart("saved", "Money saved by the cache", "usd", "bar", (Series("saved", "Saved"),)),
    Chart("tokens", "Tokens", "tokens", "bar",
          (Series("tokens_in", "Input"), Series("tokens_out", "Output")), stacked=True),
]  # fmt: skip


def _number(value, unit):
    if value is None:
        return None
    if unit == "usd":
        return round(float(value), 6)
    if unit in ("ms",):
        return round(float(value), 1)
    if unit == "percent":
        return round(float(value) * 100, 2)
    return value


def _printed(value, unit) -> str:
    if value is None:
        return "—"
    if unit == "usd":
        return money(value)
    if unit == "ms":
        return duration(value)
    if unit == "percent":
        return percent(value)
    return formats.number_format(value, force_grouping=True)


def build(
    rows: list[dict], *, hourly: bool, axis: list[datetime] | None = None
) -> tuple[list[dict], dict]:
    """The charts for the template (titles and tables) and their data for the page's JSON.

    `axis`, when given, is every bucket the chart spans (today's 24 hours, say): those after
    the last row are drawn empty, so that an early hour is not one bar across the page. The
    tables list the rows only."""
    moments = [row["start"] for row in rows]
    later = [moment for moment in axis or [] if not moments or moment > moments[-1]]
    labels = [m.strftime("%H:%M" if hourly else "%b %-d") for m in moments + later]
    titles = [m.strftime("%Y-%m-%d %H:%M" if hourly else "%a %Y-%m-%d") for m in moments + later]
    empty = [None] * len(later)
    page, data = [], {"labels": labels, "titles": titles, "charts": []}
    for chart in CHARTS:
        data["charts"].append(
            {
                "id": chart.id,
                "unit": chart.unit,
                "kind": chart.kind,
                "stacked": chart.stacked,
                "series": [
                    {
                        "label": s.label,
                        "values": [_number(row[s.key], chart.unit) for row in rows] + empty,
                    }
                    for s in chart.series
                ],
            }
        )
        page.append(
            {
                "id": chart.id,
                "title": chart.title,
                "columns": [s.label for s in chart.series],
                # Rendered here, not by a template loop: a 90-day page has 630 such rows.
                "rows_html": format_html_join(
                    "",
                    "<tr><td>{}</td>{}</tr>",
                    (
                        (
                            title,
                            format_html_join(
                                "",
                                "<td>{}</td>",
                                ((_printed(row[s.key], chart.unit),) for s in chart.series),
                            ),
                        )
                        for title, row in zip(titles, rows, strict=False)
                    ),
                ),
            }
        )
    return page, data
