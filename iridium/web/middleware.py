"""The HTTP edge of domain errors (iridium.infra.errors): one that a view lets through becomes
a page with its message, and its status (JSON for a client that asks for JSON)."""

from django.http import JsonResponse
from django.shortcuts import render
from django.utils.deprecation import MiddlewareMixin

from iridium.infra.errors import DomainError


class DomainErrorMiddleware(MiddlewareMixin):
    def process_exception(self, request, exception):
        if not isinstance(exception, DomainError):
            return None
        if "application/json" in request.headers.get("Accept", ""):
            return JsonResponse(
                {"error": {"code": exception.code, "message": exception.message}},
                status=exception.http_status,
            )
        return render(
            request,
            "error.html",
            {"code": exception.code, "message": exception.message},
            status=exception.http_status,
        )
