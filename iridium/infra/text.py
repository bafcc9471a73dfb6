"""Text on its way to storage. What people type is checked (a clear error, nothing changed);
text from elsewhere (a model's tool arguments, a provider's error) is made storable.

PostgreSQL's text and jsonb take neither NUL nor a lone surrogate (psycopg cannot even encode
the latter): one such character would fail the whole write.
"""

from .errors import DomainError

NUL = "\x00"
REPLACEMENT = "\ufffd"
HAS_NUL = "Text cannot contain the NUL character."
HAS_SURROGATE = "Text cannot contain an unpaired surrogate (a broken emoji or character)."


class TextRejected(DomainError, ValueError):
    """Text a person typed that cannot be stored as it is; at the HTTP edge, a 400 page."""

    code = "invalid_text"
    http_status = 400


def check_text(text: str) -> None:
    """Raise TextRejected (with a message for the person) unless `text` can be stored as is."""
    if NUL in text:
        raise TextRejected(HAS_NUL)
    if not _encodes(text):
        raise TextRejected(HAS_SURROGATE)


def query_text(request, name: str = "q", *, limit: int = 200) -> str:
    """A search box's text from the query string: stripped, at most `limit` characters, and
    refused (TextRejected, a 400 page) when it holds what no stored text can."""
    text = request.GET.get(name, "").strip()[:limit]
    check_text(text)
    return text


def storable(text: str) -> str:
    """`text` with NULs and unpaired surrogates replaced by U+FFFD."""
    if NUL in text:
        text = text.replace(NUL, REPLACEMENT)
    if not _encodes(text):
        text = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
        # A surrogate encoded with surrogatepass decodes as three replacement characters.
        text = text.replace(REPLACEMENT * 3, REPLACEMENT)
    return text


def storable_json(value):
    """A JSON value (dicts, lists, strings, ...) with every string made storable."""
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, dict):
        return {storable(str(k)): storable_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable_json(item) for item in value]
    return value


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
