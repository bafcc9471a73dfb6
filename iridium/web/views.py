import logging

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render

from iridium.web import public_demo

logger = logging.getLogger(__name__)

HEALTH_CACHE_KEY = "healthz:probe"


def home(request):
    demo = not request.user.is_authenticated and public_demo.enabled()
    context = {"public_demo": demo}
    if demo:
        context["public_demo_max_chars"] = settings.PUBLIC_DEMO_MAX_MESSAGE_CHARS
        context["public_demo_question"] = public_demo.question()
    return render(request, "home.html", context)


def healthz(request):
    """For load balancers: 200 when the database and cache answer, 503 naming what does not.
    Why it does not answer goes to the log, never into the response (it would tell anybody
    the addresses and versions behind the site)."""
    checks = {"database": _check_database, "cache": _check_cache}
    results = {}
    for name, check in checks.items():
        try:
            check()
        except Exception as error:  # any failure of a dependency is reported, not raised
            logger.warning("healthz: %s unreachable: %s", name, error)
            results[name] = {"ok": False}
        else:
            results[name] = {"ok": True}
    healthy = all(result["ok"] for result in results.values())
    failing = [name for name, result in results.items() if not result["ok"]]
    body = {"status": "ok" if healthy else "unavailable", "unreachable": failing, **results}
    return JsonResponse(body, status=200 if healthy else 503)


def _check_database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _check_cache():
    cache.set(HEALTH_CACHE_KEY, "ok", timeout=10)
    if cache.get(HEALTH_CACHE_KEY) != "ok":
        raise RuntimeError("the cache did not return what was just stored")
