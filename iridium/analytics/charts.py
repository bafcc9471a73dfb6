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
        bars.append(
            (f"{x:.1f}", f"{HEIGHT - height:.1f}", f"{bar_width:.1f}", f"{height:.1f}",
             f"{name}: ${value:.4f}")
        )  # fmt: skip
    rects = format_html_join(
        "",
        '<rect x="{}" y="{}" width="{}" height="{}" class="bar"><title>{}</title></rect>',
        bars,
    )
    return format_html(
        '<svg class="chart" viewBox="0 0 {} {}" role="img" aria-label="{}" '
        'preserveAspectRatio="none">{}<text x="4" y="12" class="chart-label">max ${}</text>'
        "</svg>",
        WIDTH,
        HEIGHT,
        label,
        rects,
        f"{top:.4f}",
    )
