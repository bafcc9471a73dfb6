"""Domain errors: raised by services, mapped once at the edge (iridium.live.consumers for
websockets, iridium.web.middleware for HTTP). Each has a stable `code` for clients and tests,
a message a person can read as it is, and an HTTP status for the HTTP edge."""


class DomainError(Exception):
    code = "invalid"
    http_status = 400

    def __init__(self, message: str, **extra):
        super().__init__(message)
        self.message = message
        # More for the page: e.g. `text`, what the person typed, given back.
        self.extra = extra


class Busy(DomainError):
    """The object is busy (an answer is being written)."""

    code = "busy"
    http_status = 409


class NotAllowed(DomainError):
    code = "forbidden"
    http_status = 403
