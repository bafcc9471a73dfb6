"""The websocket edge: which pages may open a socket, who is on it, and what an unknown socket
path gets.

Browsers send an Origin header with every websocket; a socket is accepted only from a page of
this very site (the same scheme, host and port as the socket's own address, the rule Django's
CSRF check applies to forms) or from an origin listed in CSRF_TRUSTED_ORIGINS. Channels'
AllowedHostsOriginValidator compares host names only, so a page on another port or over plain
http of the same host would pass it."""

from channels.auth import AuthMiddleware, get_user
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.security.websocket import WebsocketDenier
from channels.sessions import CookieMiddleware, InstanceSessionWrapper, SessionMiddleware
from django.conf import settings
from django.http.request import split_domain_port, validate_host

from iridium.infra.db import socket_database_call

# No page opens an unknown path, so this code is not part of the page's protocol.
CLOSE_NOT_FOUND = 4404


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin1")
    return None


def _is_secure(scope) -> bool:
    if scope.get("scheme") in ("wss", "https"):
        return True
    proxy_header = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy_header:
        name, expected = proxy_header
        header = name.removeprefix("HTTP_").lower().replace("_", "-").encode("latin1")
        value = _header(scope, header)
        return value is not None and value.split(",")[0].strip() == expected
    return False


def allowed_origin(scope) -> bool:
    """Whether the socket in `scope` comes from a page of this site."""
    origin, host = _header(scope, b"origin"), _header(scope, b"host")
    if not origin or not host:
        return False
    domain, _port = split_domain_port(host)
    allowed_hosts = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed_hosts:
        allowed_hosts = [".localhost", "127.0.0.1", "[::1]"]
    if not domain or not validate_host(domain, allowed_hosts):
        return False
    own = f"{'https' if _is_secure(scope) else 'http'}://{host}".lower()
    return origin.lower() == own or origin in settings.CSRF_TRUSTED_ORIGINS


class SameOriginValidator:
    """ASGI middleware: refuses (HTTP 403 at the handshake) sockets from other origins."""

    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        if allowed_origin(scope):
            return await self.application(scope, receive, send)
        return await WebsocketDenier()(scope, receive, send)


class SocketSessionMiddleware(SessionMiddleware):
    """Channels' session middleware for sockets, without its wrapper around `send`: that wrapper
    saves a session only on an HTTP response, never on a socket, but reads the session on every
    frame sent (a token of an answer is one). The session is loaded as Channels loads it."""

    async def __call__(self, scope, receive, send):
        wrapper = InstanceSessionWrapper(scope, send)
        await wrapper.resolve_session()
        return await self.inner(wrapper.scope, receive, send)


class SocketAuthMiddleware(AuthMiddleware):
    """Channels' `AuthMiddleware`, its read of the user made as the sockets' other reads are
    (`iridium.infra.db.socket_database_call`)."""

    async def resolve_scope(self, scope):
        scope["user"]._wrapped = await socket_database_call(get_user.func, scope)


def socket_auth(inner):
    """Channels' `AuthMiddlewareStack` (cookies, session, user in the scope) for sockets."""
    return CookieMiddleware(SocketSessionMiddleware(SocketAuthMiddleware(inner)))


class NoSuchSocket(AsyncWebsocketConsumer):
    """Any socket path no app routes: closed at once with a code that says so (not a 500)."""

    async def connect(self):
        await self.close(code=CLOSE_NOT_FOUND)
