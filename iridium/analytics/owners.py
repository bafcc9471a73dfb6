"""What a trace belongs to (a conversation, a ticket, a creation), so that its page can name it
and link back. Each app registers a `describe(user, trace_id)` for its trace-id prefix from its
AppConfig.ready (this package never imports the apps above it); it returns
{"label": ..., "url": ...}, the url only when `user` may open the object, or None. The label
names the object by its number and owner, never by what people typed (a title may hold words
that privacy mode keeps out of the console)."""

from collections.abc import Callable

Describe = Callable[[object, str], dict | None]
_owners: dict[str, Describe] = {}


def register(prefix: str, describe: Describe) -> None:
    _owners[prefix] = describe


def describe(user, trace_id: str) -> dict | None:
    for prefix, describe_one in _owners.items():
        if trace_id.startswith(prefix):
            return describe_one(user, trace_id)
    return None
