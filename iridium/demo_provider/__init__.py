"""Iridium's demo AI provider: a deterministic, OpenAI-compatible ASGI server (see `app`).

It imports nothing of the project, so it runs anywhere an ASGI server does:
`python -m iridium.demo_provider` serves it alone, `manage.py serve` beside the app.
"""

from .app import MODELS, DemoProvider

__all__ = ["MODELS", "DemoProvider"]
