"""The signed-in user of a request, loaded once for its asynchronous and synchronous code."""


async def load_user(request) -> None:
    """Make `request.user` the user `await request.auser()` loaded. Django caches the two
    apart, so synchronous work after an `auser()` (PostHog's middleware calls it on every
    request) would read the session's user from the database once more."""
    request.user = await request.auser()
