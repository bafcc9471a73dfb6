"""Markdown is rendered in the browser while an answer streams: never a raw marker on screen,
a few renders a second whatever the rate of tokens, and the same layout as the server's
rendering that replaces it when the answer ends."""

import pytest
from playwright.sync_api import expect

from iridium.live.rendering import render_markdown
from tests.helpers.browser import log_in, new_page

pytestmark = pytest.mark.browser

# Every render of the streaming answer, as the person saw it.
RECORD_RENDERS = """
window.renders = [];
new MutationObserver((records) => {
  for (const record of records) {
    const body = record.target.closest?.('.answer-body.streaming');
    // A render replaces the body's content (adding a Copy code button removes nothing).
    if (!body || record.target !== body || !record.removedNodes.length) continue;
    window.renders.push({at: performance.now(), text: body.innerText, html: body.innerHTML});
  }
}).observe(document, {subtree: true, childList: true});
"""

SAME_AS_THE_BROWSER = """
async () => {
  const answer = [...document.querySelectorAll('.message.assistant')].at(-1);
  const server = answer.querySelector('.answer-body');
  const { renderStreaming } = await import('/static/js/markdown.js');
  const browser = server.cloneNode(false);
  browser.innerHTML = renderStreaming(answer.querySelector('.answer-raw').textContent);
  for (const pre of browser.querySelectorAll('pre')) {  // as the page adds them to both
    const button = document.createElement('button');
    button.className = 'copy-code secondary small';
    button.textContent = 'Copy code';
    pre.before(button);
  }
  server.after(browser);
  const tags = (root) => [...root.querySelectorAll('*')]
    .map((e) => e.tagName).filter((t) => t !== 'SPAN');
  const result = {
    server: {height: server.getBoundingClientRect().height, tags: tags(server),
             text: server.innerText},
    browser: {height: browser.getBoundingClientRect().height, tags: tags(browser),
              text: browser.innerText},
    keyword: [server, browser].map((root) => {
      const k = [...root.querySelectorAll('pre span')].find((s) => s.textContent === 'def');
      return k && getComputedStyle(k).color;
    }),
  };
  browser.remove();
  return result;
}
"""


def ask(page, live_url, question):
    page.add_init_script(RECORD_RENDERS)
    page.goto(live_url + "/chat/")
    page.get_by_role("button", name="New conversation").click()
    page.get_by_label("Message").fill(question)
    page.get_by_label("Message").press("Enter")
    answer = page.locator(".message.assistant").last
    expect(answer.locator(".usage")).to_be_visible(timeout=30_000)
    return page.evaluate("window.renders")


def test_no_raw_markdown_marker_is_ever_on_screen(live_url, ai_settings, user, browser):
    # Tokens slower than the renders: the page shows every state the text goes through.
    page = new_page(browser)
    log_in(page, live_url, user)
    renders = ask(page, live_url, "A python function with **bold words** [[demo:slow=0.14]]")
    assert len(renders) >= 30, len(renders)
    for render in renders:
        assert "```" not in render["text"] and "**" not in render["text"], render["text"]
    assert any("<strong>bold words</strong>" in r["html"] for r in renders)
    assert any("<pre>" in r["html"] and "hljs-keyword" in r["html"] for r in renders)
    page.context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_a_few_renders_a_second_and_no_jump_at_the_end(
    live_url, ai_settings, user, browser, scheme
):
    page = new_page(browser, scheme=scheme)
    log_in(page, live_url, user)
    renders = ask(page, live_url, "Write a python function please [[demo:slow=0.02]]")
    times = [r["at"] for r in renders]
    busiest = max(sum(1 for t in times if start <= t < start + 1000) for start in times)
    assert busiest <= 10, busiest  # a few renders a second, though ~50 tokens a second came

    compared = page.evaluate(SAME_AS_THE_BROWSER)
    assert compared["browser"]["tags"] == compared["server"]["tags"]
    assert compared["browser"]["text"] == compared["server"]["text"]
    assert abs(compared["browser"]["height"] - compared["server"]["height"]) <= 1, compared
    assert compared["keyword"][0] == compared["keyword"][1] is not None
    page.context.close()


SAMPLE = (
    "# Steps\n\nSome **bold words**, *emphasis*, ~~gone~~ and `inline code`.\n\n"
    "- a **list** item\n- another\n\n```python\ndef f(x):\n    return x * 2\n```\n\nDone **now**."
)


def test_every_prefix_of_an_answer_renders_without_markers(live_url, ai_settings, user, browser):
    page = new_page(browser)
    log_in(page, live_url, user)
    page.goto(live_url + "/chat/")
    shown = page.evaluate(
        """async (sample) => {
             const { renderStreaming } = await import('/static/js/markdown.js');
             const out = [];
             const probe = document.createElement('div');
             document.body.append(probe);
             for (let end = 1; end <= sample.length; end += 1) {
               probe.innerHTML = renderStreaming(sample.slice(0, end));
               out.push(probe.innerText);
             }
             probe.remove();
             return out;
           }""",
        SAMPLE,
    )
    assert len(shown) == len(SAMPLE)
    for number, text in enumerate(shown, start=1):
        for marker in ("```", "**", "~~"):
            assert marker not in text, (SAMPLE[:number], text)
        in_code = SAMPLE[:number].count("```") % 2 == 1
        if not in_code:  # code may end with anything, prose not with half a marker
            assert not text.rstrip().endswith(("*", "`", "~")), (SAMPLE[:number], text)
    assert "return x * 2" in shown[-1]
    page.context.close()


RICH = (
    "## A heading\n\nText with **bold**, *emphasis*, ~~struck~~, `code` and a "
    "[link](https://example.com/a?b=1).\n\n> A quote\n\n1. one\n2. two\n\n- x\n- y\n\n"
    "| left | right | centre |\n|:--|--:|:-:|\n| 1 | 2 | 3 |\n\n---\n\n"
    "```python\nclass A:\n    def f(self):\n        return 'x'  # note\n```\n\n"
    "```\nplain block\n```\n\n    indented code\n\n<b>raw html stays text</b>\n"
)

SHAPE = """
(html) => {
  const root = document.createElement('div');
  root.innerHTML = html;
  return [...root.querySelectorAll('*')].filter((e) => e.tagName !== 'SPAN').map((e) =>
    [e.tagName, e.getAttribute('class') || '', e.getAttribute('href') || '',
     e.getAttribute('rel') || '', e.getAttribute('style') || '']);
}
"""

TEXT = """
(html) => { const d = document.createElement('div'); d.innerHTML = html; return d.textContent; }
"""


def test_the_browser_renders_markdown_as_the_server_does(live_url, ai_settings, user, browser):
    server = render_markdown(RICH)
    page = new_page(browser)
    log_in(page, live_url, user)
    page.goto(live_url + "/chat/")
    shown = page.evaluate(
        """async (text) => {
             const { renderMarkdown } = await import('/static/js/markdown.js');
             return renderMarkdown(text);
           }""",
        RICH,
    )
    assert page.evaluate(SHAPE, shown) == page.evaluate(SHAPE, server)
    assert page.evaluate(TEXT, shown) == page.evaluate(TEXT, server)
    assert "align-right" in server and "<s>" in server and "&lt;b&gt;" in server
    page.context.close()
