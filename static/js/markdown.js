// An answer's Markdown rendered in the browser while it streams, the way the server renders it
// once it is complete (iridium/infra/markdown.py): markdown-it with CommonMark, tables and
// strikethrough, raw HTML off; code highlighted (highlight.js here, pygments there, coloured
// alike by static/css/iridium.css); then sanitised (DOMPurify here, nh3 there) to the same
// tags. The server's HTML replaces this when the answer ends, so the two must agree in
// structure: tests/browser/test_chat_markdown_browser.py compares them.

import markdownit from "../vendor/markdown-it/markdown-it.min.mjs";
import DOMPurify from "../vendor/dompurify/purify.es.mjs";
import hljs from "../vendor/highlight.js/core.min.js";
import bash from "../vendor/highlight.js/languages/bash.min.js";
import csharp from "../vendor/highlight.js/languages/csharp.min.js";
import css from "../vendor/highlight.js/languages/css.min.js";
import go from "../vendor/highlight.js/languages/go.min.js";
import java from "../vendor/highlight.js/languages/java.min.js";
import javascript from "../vendor/highlight.js/languages/javascript.min.js";
import json from "../vendor/highlight.js/languages/json.min.js";
import python from "../vendor/highlight.js/languages/python.min.js";
import rust from "../vendor/highlight.js/languages/rust.min.js";
import shell from "../vendor/highlight.js/languages/shell.min.js";
import sql from "../vendor/highlight.js/languages/sql.min.js";
import typescript from "../vendor/highlight.js/languages/typescript.min.js";
import xml from "../vendor/highlight.js/languages/xml.min.js";

const languages = { bash, csharp, css, go, java, javascript, json, python, rust, shell, sql, typescript, xml };
for (const [name, grammar] of Object.entries(languages)) hljs.registerLanguage(name, grammar);
hljs.registerAliases(["html"], { languageName: "xml" });

// iridium/infra/markdown.py's ALLOWED_TAGS and ALLOWED_ATTRIBUTES.
const ALLOWED_TAGS = [
  "p", "br", "hr", "strong", "em", "del", "s", "code", "pre", "span", "div", "blockquote",
  "ul", "ol", "li", "a", "h1", "h2", "h3", "h4", "h5", "h6",
  "table", "thead", "tbody", "tr", "th", "td",
];
const ALLOWED_ATTR = ["href", "title", "class"];
// A table column's alignment as a class, as the server writes it (no inline style: the
// Content-Security-Policy refuses those).
const ALIGNMENT = / style="text-align:(left|right|center)"/g;

const md = markdownit("commonmark", {
  html: false,
  linkify: false,
  highlight(code, language) {
    if (!language || !hljs.getLanguage(language)) return ""; // markdown-it escapes it
    return hljs.highlight(code, { language, ignoreIllegals: true }).value;
  },
}).enable(["table", "strikethrough"]);

DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A") node.setAttribute("rel", "noopener noreferrer nofollow");
});

// Markdown cut off mid-stream: an emphasis or code span opened but not yet closed, or the first
// characters of a marker, would show as literal `**` or backticks until the rest arrives. The
// text is completed for display (never stored): a dangling marker at the very end is dropped,
// and a marker opened in the last paragraph is closed.
export function completeForDisplay(text) {
  const lines = text.split("\n");
  let fenceOpen = false;
  let paragraphStart = 0;
  for (let i = 0; i < lines.length; i += 1) {
    if (/^ {0,3}(```|~~~)/.test(lines[i])) {
      fenceOpen = !fenceOpen;
      paragraphStart = i + 1;
    } else if (!fenceOpen && lines[i].trim() === "") {
      paragraphStart = i + 1;
    }
  }
  if (fenceOpen) {
    // Inside a code block that is still being written: a closing fence half typed is not code.
    const last = lines.length - 1;
    if (/^ {0,3}`{1,2}$|^ {0,3}~{1,2}$/.test(lines[last])) lines[last] = "";
    return lines.join("\n");
  }
  const head = lines.slice(0, paragraphStart).join("\n");
  let tail = lines.slice(paragraphStart).join("\n");
  // A fence, list marker, emphasis or heading just begun, with nothing after it yet.
  tail = tail
    .replace(/\s+$/, "")
    .replace(/(^|\s)(`{1,3}|~{1,3}|[*_]{1,3}|#{1,6})$/, "$1")
    .replace(/[*_~`]+$/, "")
    .replace(/\s+$/, "");
  const withoutCode = tail.replace(/`[^`]*`/g, "");
  if ((withoutCode.match(/`/g) || []).length % 2 === 1) tail += "`";
  else {
    const strong = (withoutCode.match(/\*\*/g) || []).length;
    const rest = withoutCode.replace(/\*\*/g, "");
    const emphasis = (rest.match(/(^|[^\w*])\*(?=\S)/g) || []).length - (rest.match(/\S\*(?!\w)/g) || []).length;
    if (emphasis > 0) tail += "*";
    if (strong % 2 === 1) tail += "**";
    if ((withoutCode.match(/~~/g) || []).length % 2 === 1) tail += "~~";
  }
  return paragraphStart ? `${head}\n${tail}` : tail;
}

export function renderMarkdown(text) {
  const html = md.render(text).replace(ALIGNMENT, ' class="align-$1"');
  return DOMPurify.sanitize(html, { ALLOWED_TAGS, ALLOWED_ATTR });
}

export function renderStreaming(text) {
  return renderMarkdown(completeForDisplay(text));
}
