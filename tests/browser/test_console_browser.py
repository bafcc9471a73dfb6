"""The analytics console in Chromium: every chart is drawn with its axes at a desktop and a
phone width, in light and dark; the filters survive a reload; no page scrolls sideways."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from iridium.analytics import charts
from tests import factories
from tests.helpers.browser import SIZES, log_in, new_page

pytestmark = pytest.mark.browser

# The first series' colour of each theme (--chart-1 in static/css/iridium.css).
SERIES_COLOUR = {"light": "rgb(79, 70, 229)", "dark": "rgb(139, 135, 255)"}


@pytest.fixture
def console(live_url, make_user):
    admin = make_user("root", is_staff=True, is_superuser=True)
    alice = make_user("alice")
    now = timezone.now()
    factories.create_generations(
        {
            "created_at": now - timedelta(days=index % 30, minutes=index),
            "user": alice,
            "plan": alice.plan,
            "feature": ["chat", "customer-support"][index % 2],
            "model": ["gpt-4o-mini", "gpt-4o"][index % 3 % 2],
            "variant": ["control", "test"][index % 2],
            "total_cost_usd": Decimal(index % 7 + 1) / 1000,
            "latency_ms": float(200 + index * 13 % 700),
            "time_to_first_token_ms": float(40 + index % 60),
            "is_error": index % 13 == 0,
            "cache_hit": index % 10 == 0,
            "saved_cost_usd": Decimal("0.003") if index % 10 == 0 else None,
            "input_tokens": 300 + index,
            "output_tokens": 90,
            "trace_id": f"conversation-{index % 9}",
        }
        for index in range(150)
    )
    return admin


def open_page(browser, live_url, user, size, scheme):
    page = new_page(browser, size=SIZES[size], scheme=scheme)
    complaints = []
    page.on("console", lambda m: complaints.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: complaints.append(str(error)))
    page.complaints = complaints  # script errors and Content-Security-Policy violations
    log_in(page, live_url, user)
    return page


def no_sideways_scroll(page):
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"page is {width}px wide"


CHART_STATE = """canvas => {
  const chart = Chart.getChart(canvas);
  const box = canvas.getBoundingClientRect();
  return {
    width: box.width, height: box.height,
    x: chart.scales.x.ticks.map(t => chart.scales.x.getLabelForValue(t.value)),
    y: chart.scales.y.ticks.length,
    points: chart.data.datasets.map(d => d.data.length),
  };
}"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("size", list(SIZES))
def test_every_chart_is_drawn_with_axes(console, live_url, browser, size, scheme, tmp_path):
    page = open_page(browser, live_url, console, size, scheme)
    for period, points, label in [("30d", 30, "%b %-d"), ("today", None, "%H:00")]:
        page.goto(f"{live_url}/analytics/?period={period}")
        expect(page.locator("canvas[data-drawn]")).to_have_count(len(charts.CHARTS))
        for chart in charts.CHARTS:
            canvas = page.locator(f'canvas[data-chart="{chart.id}"]')
            state = canvas.evaluate(CHART_STATE)
            assert state["width"] >= 300 and state["height"] >= 200, (chart.id, state)
            assert state["width"] <= SIZES[size]["width"]
            assert len(state["x"]) >= 3 and state["y"] >= 2, (chart.id, state)  # both axes
            # Today is drawn as the whole day, its hours to come empty (null), even at 00:10.
            assert set(state["points"]) == {points or 24}
            if period == "today":
                values = canvas.evaluate("c => Chart.getChart(c).data.datasets[0].data")
                assert values[timezone.localtime().hour + 1 :] == [None] * (
                    23 - timezone.localtime().hour
                )
            today = timezone.localtime().strftime(label)
            assert today in [*state["x"], *page.evaluate(
                "JSON.parse(document.getElementById('console-chart-data').textContent).labels"
            )]  # fmt: skip
        colour = page.locator('canvas[data-chart="spend"]').evaluate(
            "c => Chart.getChart(c).data.datasets[0].backgroundColor"
        )
        assert colour == SERIES_COLOUR[scheme]
        no_sideways_scroll(page)
        assert page.complaints == []
        page.screenshot(path=tmp_path / f"dashboard-{period}-{size}-{scheme}.png", full_page=True)
        page.screenshot(path=tmp_path / f"top-{period}-{size}-{scheme}.png")
        page.get_by_test_id("chart-latency").screenshot(
            path=tmp_path / f"latency-{period}-{size}-{scheme}.png"
        )
    print(f"screenshots in {tmp_path}")


def test_the_charts_follow_the_theme_toggle(console, live_url, browser):
    page = open_page(browser, live_url, console, "desktop", "light")
    page.goto(f"{live_url}/analytics/?period=7d")
    canvas = page.locator('canvas[data-chart="tokens"]')
    expect(canvas).to_have_attribute("data-drawn", "true")
    read = "c => Chart.getChart(c).data.datasets[0].backgroundColor"
    assert canvas.evaluate(read) == SERIES_COLOUR["light"]
    page.evaluate("document.documentElement.dataset.theme = 'dark'")  # what the toggle does
    page.wait_for_function(
        f"Chart.getChart(document.querySelector('canvas[data-chart=tokens]'))"
        f".data.datasets[0].backgroundColor === '{SERIES_COLOUR['dark']}'"
    )
    assert page.complaints == []


def test_values_show_on_focus_and_hover(console, live_url, browser):
    page = open_page(browser, live_url, console, "desktop", "light")
    page.goto(f"{live_url}/analytics/?period=7d")
    canvas = page.locator('canvas[data-chart="spend"]')
    expect(canvas).to_have_attribute("data-drawn", "true")
    canvas.focus()
    page.keyboard.press("Home")
    tooltip = canvas.evaluate(
        "c => { const t = Chart.getChart(c).tooltip;"
        " return {title: t.title, body: t.body.map(b => b.lines.join(' '))}; }"
    )
    first_day = (timezone.localtime() - timedelta(days=6)).strftime("%Y-%m-%d")
    assert first_day in tooltip["title"][0]
    assert tooltip["body"][0].startswith("Spend: $")
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + box["width"] - 20, box["y"] + box["height"] / 2)
    title = canvas.evaluate("c => Chart.getChart(c).tooltip.title")
    assert timezone.localtime().strftime("%Y-%m-%d") in title[0]


@pytest.mark.parametrize("size", list(SIZES))
def test_filters_survive_a_reload(console, live_url, browser, size):
    page = open_page(browser, live_url, console, size, "light")
    page.goto(f"{live_url}/analytics/?period=7d")
    page.get_by_label("Feature").select_option("chat")
    page.get_by_label("Model").select_option("gpt-4o")
    page.get_by_label("Errors only").check()
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_label("Feature")).to_have_value("chat")
    assert "feature=chat" in page.url and "model=gpt-4o" in page.url and "period=7d" in page.url
    filtered = page.get_by_test_id("calls").inner_text()
    page.reload()
    expect(page.get_by_label("Feature")).to_have_value("chat")
    expect(page.get_by_label("Model")).to_have_value("gpt-4o")
    expect(page.get_by_label("Errors only")).to_be_checked()
    expect(page.get_by_test_id("calls")).to_have_text(filtered)
    # another period keeps the filters
    page.get_by_role("navigation", name="Period").get_by_role("link", name="30 days").click()
    expect(page.get_by_label("Feature")).to_have_value("chat")
    assert "period=30d" in page.url
    no_sideways_scroll(page)


@pytest.mark.parametrize("path", ["/analytics/", "/analytics/traces/", "/analytics/budgets/",
                                  "/analytics/experiments/",
                                  "/analytics/traces/conversation-1/"])  # fmt: skip
def test_no_console_page_scrolls_sideways_on_a_phone(console, live_url, browser, path, tmp_path):
    for scheme in ("light", "dark"):
        page = open_page(browser, live_url, console, "phone", scheme)
        page.goto(live_url + path)
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        no_sideways_scroll(page)
        name = path.strip("/").replace("/", "-")
        page.screenshot(path=tmp_path / f"{name}-{scheme}.png", full_page=True)


@pytest.fixture
def trace_with_content(console):
    """A chat answer that used a tool: made before the browser opens (see tests/live.py)."""
    alice = console.__class__.objects.get(username="alice")
    now = timezone.now()
    ask = [{"role": "user", "content": "How do I get a **refund** for `order 42`?"}]
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "search_knowledge_base", "arguments": '{"query": "refund"}'},
    }
    first = factories.create_generation(
        trace_id="conversation-500", user=alice, created_at=now - timedelta(seconds=5),
        latency_ms=900.0, input=ask, total_cost_usd=Decimal("0.0001"), input_tokens=40,
        output=[{"role": "assistant", "content": None, "tool_calls": [call]}],
    )  # fmt: skip
    factories.span(trace_id="conversation-500", user=alice, parent_id=first.span_id,
                   created_at=now - timedelta(seconds=4), latency_ms=30.0,
                   input_state={"query": "refund"},
                   output_state={"articles": ["Understanding your invoice"]})  # fmt: skip
    factories.create_generation(
        trace_id="conversation-500", user=alice, created_at=now - timedelta(seconds=3.9),
        latency_ms=2100.0, step=2, total_cost_usd=Decimal("0.0003"), input_tokens=80,
        input=[*ask, {"role": "tool", "tool_call_id": "call_1", "content": '{"articles": []}'}],
        output=[{"role": "assistant", "content": "File a ticket:\n\n1. Open **Billing**\n"
                 "2. Choose *refund*\n\n```python\nrefund(order=42)\n```"}],
    )  # fmt: skip
    return "conversation-500"


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("size", list(SIZES))
def test_a_trace_reads_as_a_timeline_and_a_transcript(
    console, trace_with_content, live_url, browser, size, scheme, tmp_path
):
    page = open_page(browser, live_url, console, size, scheme)
    page.goto(f"{live_url}/analytics/traces/{trace_with_content}/")
    steps = page.get_by_test_id("timeline-step")
    expect(steps).to_have_count(3)
    widths = [steps.nth(i).locator(".timeline-bar .bar").bounding_box()["width"] for i in range(3)]
    assert widths[2] > widths[0] > widths[1] > 0  # 2.1 s, 900 ms, 30 ms
    expect(steps.nth(2)).to_contain_text("2.10 s")
    steps.nth(2).get_by_text("Messages (3)").click()
    turns = steps.nth(2).get_by_test_id("turn")
    expect(turns).to_have_count(3)
    expect(turns.nth(2).locator("strong")).to_have_text("Billing")
    expect(turns.nth(2).locator("pre")).to_contain_text("refund(order=42)")
    steps.nth(0).get_by_text("Messages (2)").click()
    expect(steps.nth(0)).to_contain_text("Calls tool search_knowledge_base with")
    no_sideways_scroll(page)
    page.screenshot(path=tmp_path / f"trace-{size}-{scheme}.png", full_page=True)
