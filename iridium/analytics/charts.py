"""Charts as SVG drawn on the server: pictures people read at a glance, with the figures in a
table beside them for screen readers and exact values."""

from django.utils.html import format_html, format_html_join

WIDTH, HEIGHT, GAP = 720, 180, 2


def bar_chart(points: list[tuple[str, float]], *, label: str) -> str:
    if not points:
        return ""
    top = max(value for _, value in points) or 1.0
    bar_width = max(1.0, WIDTH / len(points) - GAP)
    bars = []
    for index, (name, value) in enumerate(points):
        height = 0 if not value else max(1.0, value / top * (HEIGHT - 20))
        x = index * (bar_width + GAP)
        bars.append((x, HEIGHT - height, bar_width, height, f"{name}: ${value:.4f}"))
    rects = format_html_join(
        "",
        '<rect x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}" class="bar">'
        "<title>{}</title></rect>",
        bars,
    )
    return format_html(
        '<svg class="chart" viewBox="0 0 {} {}" role="img" aria-label="{}" '
        'preserveAspectRatio="none">{}<text x="4" y="12" class="chart-label">max ${:.4f}</text>'
        "</svg>",
        WIDTH,
        HEIGHT,
        label,
        rects,
        top,
    )
