// The public demo on the home page (iridium/web/public_demo.py): a visitor's questions over the
// demo's socket, answers streamed and rendered as the chat page renders them (markdown.js while
// streaming, the server's HTML once complete). It speaks frames of iridium/live/protocol.py
// (tests/test_public_demo.py holds the two together). The conversation lives in this page only.

import { renderStreaming } from "./markdown.js";

const root = document.querySelector("[data-public-demo]");
const list = root.querySelector("[data-messages]");
const form = root.querySelector("[data-composer]");
const input = form.querySelector("textarea");
const sendButton = root.querySelector("[data-send]");
const notice = root.querySelector("[data-notice]");
const announcer = root.querySelector("[data-announcer]");
const connection = root.querySelector("[data-connection]");
const scheme = location.protocol === "https:" ? "wss://" : "ws://";
const socketUrl = `${scheme}${location.host}${root.dataset.socket}`;
const csrfToken = form.querySelector("[name=csrfmiddlewaretoken]").value;

// Close codes of iridium/live/protocol.py.
const CLOSE_FORBIDDEN = 4403;
// The streaming answer is rendered at most this often, as on the chat page.
const RENDER_EVERY_MS = 120;

// The socket opens with the visitor's first question (after the demo has started their
// session): a visit that asks nothing costs no session.
let socket = null;
let started = null;
let attempts = 0;
// Frames waiting for the socket to open.
const outbox = [];
let busy = false;
// The question waiting for its answer, and the answer being written.
let question = null;
let current = null;

function connect() {
  socket = new WebSocket(socketUrl);
  socket.addEventListener("open", () => {
    attempts = 0;
    connection.textContent = "";
    root.dataset.connected = "";
    while (outbox.length) socket.send(outbox.shift());
  });
  socket.addEventListener("message", (event) => handle(JSON.parse(event.data)));
  socket.addEventListener("close", (event) => {
    delete root.dataset.connected;
    if (event.code === CLOSE_FORBIDDEN) {
      unavailable();
      return;
    }
    if (current) {
      // The answer ends with the socket: the question may be asked again.
      current.item.classList.remove("streaming");
      current.item.append(element("p", "status-note error", "The connection was lost. Please ask again."));
      current = null;
      question = null;
      setBusy(false);
    }
    connection.textContent = "Reconnecting…";
    attempts += 1;
    setTimeout(connect, Math.min(1000 * 2 ** attempts, 15000));
  });
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function message(role, label) {
  const item = element("li", `message ${role}`);
  item.dataset.role = role;
  item.append(element("div", "message-author", label));
  list.append(item);
  return item;
}

function setBusy(value) {
  busy = value;
  sendButton.disabled = value;
}

function say(text, { error = false, signup = "" } = {}) {
  notice.replaceChildren(element("span", "", text));
  if (signup) {
    const link = element("a", "button small", "Sign up free");
    link.href = signup;
    notice.append(" ", link);
  }
  notice.classList.toggle("error", error);
  notice.hidden = false;
}

function render() {
  if (!current || current.scheduled) return;
  current.scheduled = true;
  setTimeout(() => {
    if (!current) return;
    current.scheduled = false;
    current.body.innerHTML = renderStreaming(current.text);
  }, RENDER_EVERY_MS);
}

function handle(frame) {
  switch (frame.type) {
    case "ready":
      if (!question) setBusy(false); // a question waiting in the outbox is on its way
      break;
    case "answer_started": {
      const item = message("assistant", "Assistant");
      const body = element("div", "message-body answer-body markdown");
      const thinking = element("p", "thinking", " Thinking…");
      const dots = element("span", "thinking-dots");
      dots.setAttribute("aria-hidden", "true");
      dots.append(element("span"), element("span"), element("span"));
      thinking.prepend(dots);
      body.append(thinking);
      item.append(body);
      item.classList.add("streaming");
      current = { id: frame.message_id, text: "", body, item, scheduled: false };
      announcer.textContent = "The assistant is answering.";
      break;
    }
    case "delta":
      if (!current || frame.message_id !== current.id) break;
      if (frame.offset === current.text.length) current.text += frame.text;
      render();
      break;
    case "answer_finished": {
      if (!current || frame.message_id !== current.id) break;
      const { item, body } = current;
      current = null;
      item.classList.remove("streaming");
      body.innerHTML = frame.html;
      if (frame.message.status !== "complete") {
        item.classList.add("error");
        item.append(element("p", "status-note error", frame.message.error));
      }
      question = null;
      announcer.textContent = "The assistant has answered.";
      setBusy(false);
      input.focus();
      break;
    }
    case "refused":
      if (question) question.remove();
      question = null;
      if (current) current.item.remove();
      current = null;
      if (!input.value) input.value = frame.text || "";
      say(frame.message, { signup: frame.signup_url });
      setBusy(false);
      break;
    case "error":
      if (question) question.remove();
      question = null;
      if (frame.text && !input.value) input.value = frame.text;
      say(frame.message, { error: true });
      setBusy(false);
      break;
    default:
      break;
  }
}

function unavailable() {
  outbox.length = 0;
  if (question) {
    if (!input.value) input.value = question.querySelector(".user-text").textContent;
    question.remove();
    question = null;
  }
  connection.textContent = "The demo is not available just now. Reload the page, or sign up.";
  setBusy(true);
}

// The demo starts the visitor's session (a POST, under CSRF protection), then the socket opens.
function start() {
  started ??= fetch(root.dataset.start, {
    method: "POST",
    headers: { "X-CSRFToken": csrfToken },
    credentials: "same-origin",
  }).then((response) => {
    if (!response.ok) throw new Error(`the demo answered ${response.status}`);
    connect();
  });
  return started;
}

async function send() {
  const content = input.value;
  if (busy || !content.trim()) return;
  notice.hidden = true;
  question = message("user", "You");
  question.append(element("div", "message-body user-text", content));
  input.value = "";
  setBusy(true);
  const frame = JSON.stringify({ type: "send", content });
  try {
    await start();
  } catch {
    started = null;
    unavailable();
    return;
  }
  if (socket.readyState === WebSocket.OPEN) socket.send(frame);
  else outbox.push(frame);
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  send();
});
input.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    send();
  }
});

setBusy(false);
