// The public demo on the home page (iridium/web/public_demo.py): a visitor's questions over the
// demo's socket (live-socket.js, as every page where answers stream), answers streamed and
// rendered as the chat page renders them (markdown.js while streaming, then the server's
// rendering of the message). Messages come from the server's one message template
// (live/_message.html): an answer in its frames, the visitor's question from the empty one in
// the page, filled with what they typed. It speaks frames of iridium/live/protocol.py
// (tests/test_public_demo.py holds the two together). The conversation lives in this page only.

import { fromServer, liveSocket, withDelta } from "./live-socket.js";
import { renderStreaming } from "./markdown.js";

const root = document.querySelector("[data-public-demo]");
const list = root.querySelector("[data-messages]");
const questionTemplate = root.querySelector("template[data-question]");
const form = root.querySelector("[data-composer]");
const input = form.querySelector("textarea");
const sendButton = root.querySelector("[data-send]");
const notice = root.querySelector("[data-notice]");
const announcer = root.querySelector("[data-announcer]");
const connection = root.querySelector("[data-connection]");
const csrfToken = form.querySelector("[name=csrfmiddlewaretoken]").value;

// The streaming answer is rendered at most this often, as on the chat page.
const RENDER_EVERY_MS = 120;
const LOST = "The connection was lost. Please ask again.";

// The socket opens with the visitor's first question (after the demo has started their
// session): a visit that asks nothing costs no session.
const socket = liveSocket(root.dataset.socket, {
  onFrame: handle,
  onOpen: () => {
    connection.textContent = "";
    root.dataset.connected = "";
  },
  onLost: lost,
  onRefused: unavailable,
});
let started = null;
let busy = false;
// The question waiting for its answer, and the answer being written.
let question = null;
let current = null;

function setBusy(value) {
  busy = value;
  sendButton.disabled = value;
}

function say(text, { error = false, signup = "" } = {}) {
  notice.replaceChildren(text);
  if (signup) {
    const link = document.createElement("a");
    link.className = "button small";
    link.textContent = "Sign up free";
    link.href = signup;
    notice.append(" ", link);
  }
  notice.classList.toggle("error", error);
  notice.hidden = false;
}

// The visitor's question, as the server renders a question (the page's empty one, filled in).
function ask(content) {
  const item = questionTemplate.content.firstElementChild.cloneNode(true);
  delete item.dataset.messageId;
  item.querySelector(".user-text").textContent = content;
  list.append(item);
  return item;
}

function render() {
  if (!current || current.scheduled) return;
  current.scheduled = true;
  setTimeout(() => {
    if (!current) return;
    current.scheduled = false;
    current.item.querySelector(".answer-body").innerHTML = renderStreaming(current.text); // sanitised by DOMPurify
  }, RENDER_EVERY_MS);
}

function handle(frame) {
  switch (frame.type) {
    case "ready":
      if (!question) setBusy(false); // a question waiting to be sent is on its way
      break;
    case "answer_started": {
      const item = fromServer(frame.html);
      list.append(item);
      current = { id: frame.message_id, text: "", item, scheduled: false };
      announcer.textContent = "The assistant is answering.";
      break;
    }
    case "delta":
      if (!current || frame.message_id !== current.id) break;
      current.text = withDelta(current.text, frame);
      render();
      break;
    case "answer_finished": {
      if (!current || frame.message_id !== current.id) break;
      // The server's rendering of the message takes the place of the streamed one.
      current.item.replaceWith(fromServer(frame.html));
      current = null;
      question = null;
      announcer.textContent = "The assistant has answered.";
      setBusy(false);
      input.focus();
      break;
    }
    case "refused":
      question?.remove();
      question = null;
      list.querySelector(`[data-message-id="${frame.message_id}"]`)?.remove();
      current = null;
      if (!input.value) input.value = frame.text || "";
      say(frame.message, { signup: frame.signup_url });
      setBusy(false);
      break;
    case "error":
      question?.remove();
      question = null;
      if (frame.text && !input.value) input.value = frame.text;
      say(frame.message, { error: true });
      setBusy(false);
      break;
    default:
      break;
  }
}

// The socket closed (it reconnects): an answer being written ends with it, and its question
// may be asked again.
function lost() {
  delete root.dataset.connected;
  if (current) {
    current.item.classList.remove("streaming");
    current = null;
    question = null;
    say(LOST, { error: true });
    setBusy(false);
  }
  connection.textContent = "Reconnecting…";
}

function unavailable() {
  delete root.dataset.connected;
  socket.drop();
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
    socket.open();
  });
  return started;
}

async function send() {
  const content = input.value;
  if (busy || !content.trim()) return;
  notice.hidden = true;
  question = ask(content);
  input.value = "";
  setBusy(true);
  try {
    await start();
  } catch {
    started = null;
    unavailable();
    return;
  }
  socket.send({ type: "send", content });
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
