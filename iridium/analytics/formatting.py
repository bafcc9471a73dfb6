"""How the console prints its figures: durations in ms or s (never a raw timedelta), money and
shares. Templates use them as filters (`{% load console %}`), the charts' tables call them."""

from datetime import timedelta
from decimal import Decimal


def duration(value) -> str:
    """Milliseconds (a number) or a timedelta as "850 ms" or "1.24 s" or "2 min 5 s"."""
    if value is None or value == "":
        return "—"
    ms = value.total_seconds() * 1000 if isinstance(value, timedelta) else float(value)
    if ms == 0:
        return "0 ms"
    if ms < 1:
        return f"{ms:.2f} ms"
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.2f} s"
    minutes, seconds = divmod(round(ms / 1000), 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def money(value, places: int = 4) -> str:
    if value is None or value == "":
        return "—"
    return f"${Decimal(str(value)):,.{int(places)}f}"


def percent(value) -> str:
    """A share (0..1) as a percentage."""
    if value is None or value == "":
        return "—"
    return f"{float(value) * 100:.1f}%"
