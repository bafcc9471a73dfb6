"""Domain errors are mapped once at the HTTP edge: their message as a page (or JSON), their
status; other exceptions are not the middleware's business."""

import pytest
from django.test import override_settings
from django.urls import path

from iridium.infra.errors import Busy, DomainError
from iridium.urls import urlpatterns as site_urls


class Unusual(DomainError):
    code = "unusual"
    http_status = 418


def busy(request):
    raise Busy("Something is still being written.")


def unusual(request):
    raise Unusual("Short and stout.")


def broken(request):
    raise ValueError("not a domain error")


urlpatterns = [
    *site_urls,
    path("busy/", busy),
    path("unusual/", unusual),
    path("broken/", broken),
]


@override_settings(ROOT_URLCONF=__name__)
@pytest.mark.django_db
def test_a_domain_error_becomes_its_status_and_message(client):
    response = client.get("/busy/")
    assert response.status_code == 409
    assert b"Something is still being written." in response.content
    assert b'data-code="busy"' in response.content
    response = client.get("/unusual/", headers={"Accept": "application/json"})
    assert response.status_code == 418
    assert response.json() == {"error": {"code": "unusual", "message": "Short and stout."}}


@override_settings(ROOT_URLCONF=__name__)
@pytest.mark.django_db
def test_other_exceptions_are_left_alone(client):
    client.raise_request_exception = True
    with pytest.raises(ValueError, match="not a domain error"):
        client.get("/broken/")
