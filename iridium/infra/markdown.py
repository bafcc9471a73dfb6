"""Markdown to safe HTML, rendered on the server: markdown-it-py (raw HTML off, so any HTML in
the text stays text), pygments for code blocks, nh3 to keep only harmless tags and attributes.

static/js/markdown.js renders an answer the same way in the browser while it streams (same
options, same tags, table alignment as classes): keep the two in step."""

import functools
import re

import nh3
from markdown_it import MarkdownIt
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

ALLOWED_TAGS = {
    "p", "br", "hr", "strong", "em", "del", "s", "code", "pre", "span", "div", "blockquote",
    "ul", "ol", "li", "a", "h1", "h2", "h3", "h4", "h5", "h6",
    "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "span": {"class"},
    "div": {"class"},
    "code": {"class"},
    "pre": {"class"},
    "th": {"class"},
    "td": {"class"},
}
# A table column's alignment, written by markdown-it as an inline style (which the
# Content-Security-Policy refuses to apply), becomes a class of the stylesheet.
_ALIGNMENT = re.compile(r' style="text-align:(left|right|center)"')
_formatter = HtmlFormatter(nowrap=True)


def _highlight(code: str, language: str, attributes: str) -> str:
    try:
        lexer = get_lexer_by_name(language) if language else None
    except ClassNotFound:
        lexer = None
    if lexer is None:
        return ""  # markdown-it escapes the code itself
    return highlight(code, lexer, _formatter)


_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False, "highlight": _highlight})
_markdown.enable("table").enable("strikethrough")


def code_blocks(text: str) -> list[str]:
    """The contents of the text's code blocks (fenced or indented), as the renderer reads them."""
    return [
        token.content
        for token in _markdown.parse(text)
        if token.type in ("fence", "code_block") and token.content.strip()
    ]


# The same text always renders the same. An answer served from the response cache is the text
# of an earlier one, so it is rendered once per process, not again on every hit; so are
# people's repeated questions. The HTML of at most RENDERED_KEPT texts of up to RENDERED_CHARS
# each is kept (a few MB at most).
RENDERED_KEPT = 256
RENDERED_CHARS = 16_000


def render(text: str) -> str:
    if len(text) <= RENDERED_CHARS:
        return _render_kept(text)
    return _render(text)


def _render(text: str) -> str:
    html = _ALIGNMENT.sub(r' class="align-\1"', _markdown.render(text))
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )


_render_kept = functools.lru_cache(maxsize=RENDERED_KEPT)(_render)
