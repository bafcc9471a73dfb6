// A page where AI answers stream in (a chat conversation, a support ticket, a creation): one
// websocket (live-socket.js), reconnecting by itself. It speaks the frame protocol of
// iridium/live/protocol.py.
// Messages arrive rendered by the server (one template, live/_message.html, sanitised); the
// answer being written is rendered here as it streams (markdown.js: markdown-it, sanitised by
// DOMPurify, a few times a second) and replaced by the server's rendering when it finishes.

import { follower } from "./follow.js";
import { fromServer as parseFromServer, liveSocket, withDelta } from "./live-socket.js";

// The Markdown renderer (a few hundred kB of libraries) loads beside the page, never in the way
// of the composer being ready.
const renderer = import("./markdown.js");

const root = document.querySelector("[data-stream]");
const noun = root.dataset.noun; // "conversation", "ticket" or "creation"
const username = root.dataset.username;
const list = root.querySelector("[data-messages]");
// A page without a composer (a generated snippet) only watches its answer stream.
const composer = root.querySelector("[data-composer]");
const input = composer?.querySelector("textarea");
const sendButton = root.querySelector("[data-send]");
const stopButton = root.querySelector("[data-stop]");
const regenerateButton = root.querySelector("[data-regenerate]");
const humanButton = root.querySelector("[data-human]");
const notice = root.querySelector("[data-notice]");
const announcer = root.querySelector("[data-announcer]");
const connection = root.querySelector("[data-connection]");
const follow = follower(root.querySelector("[data-jump]") ?? undefined);
const clientId = Math.random().toString(36).slice(2);

let busy = false;
// The answer being written: its id, text so far and element.
let current = null;

// The streaming answer is rendered at most this often (Markdown, highlighting, sanitising).
const RENDER_EVERY_MS = 120;
// No token for this long: the page says the provider is slow (it is still waiting).
const SLOW_AFTER_MS = Number(document.body.dataset.slowAfterMs) || 5000;

const socket = liveSocket(root.dataset.socket, {
  onFrame: handle,
  onOpen: () => {
    connection.textContent = "";
  },
  onLost: () => {
    delete root.dataset.connected;
    connection.textContent = "Connection lost. Reconnecting…";
  },
  onRefused: () => {
    delete root.dataset.connected;
    connection.textContent = `You are signed out or cannot see this ${noun}. Reload the page.`;
  },
});

// Frames that start an answer carry the browser's PostHog session id, when PostHog runs in the
// page (static/js/analytics.js), so that the answer's AI calls link to the page's replay.
const STARTS_AN_ANSWER = ["send", "regenerate", "retry", "edit"];
const REPLAY_SESSION_FIELD = "replay_session_id";

function replaySessionId() {
  try {
    return window.posthog?.__loaded ? window.posthog.get_session_id() || "" : "";
  } catch {
    return "";
  }
}

function send(frame) {
  if (STARTS_AN_ANSWER.includes(frame.type)) {
    const sessionId = replaySessionId();
    if (sessionId) frame = { ...frame, [REPLAY_SESSION_FIELD]: sessionId };
  }
  if (!socket.send(frame)) {
    connection.textContent = "Connecting… your message will be sent as soon as the connection is back.";
  }
  return true;
}

// --- Frames from the server ---------------------------------------------------------------

function handle(frame) {
  switch (frame.type) {
    case "ready":
      root.dataset.connected = "true";
      if (frame.in_progress) {
        startAnswer(frame.in_progress.message_id, frame.in_progress.html);
        setText(frame.in_progress.text);
      } else if (list.querySelector(".message.streaming") && mayReload()) {
        // The answer this page showed being written ended before the socket opened (or while
        // it was away): the page as it is now shows how it ended.
        location.reload();
      } else {
        stopWaiting();
        current = null;
        setBusy(false);
      }
      break;
    case "user_message":
      // An edited question replaces the question it edits and everything after it.
      if (frame.replaces) replaceFrom(frame.replaces);
      if (!findMessage(frame.message.id)) list.append(fromServer(frame.html));
      if (frame.title) showTitle(frame.title);
      follow.grew();
      break;
    case "answer_started":
      startAnswer(frame.message_id, frame.html);
      announce("The assistant is answering.");
      break;
    case "delta":
      applyDelta(frame);
      break;
    case "snapshot":
      if (current && current.id === frame.message_id) setText(frame.text);
      break;
    case "tool":
      findMessage(frame.message_id)?.querySelector(".tool-notes")?.append(fromServer(frame.html));
      break;
    case "answer_finished":
      finishAnswer(frame);
      break;
    case "refused":
      refused(frame);
      break;
    case "notice":
      showNotice(frame.message, "info");
      if (frame.code === "handed_over" && humanButton) humanButton.hidden = true;
      if (frame.code === "status") showStatus(frame.status, frame.label);
      break;
    case "feedback_saved":
      showFeedback(frame);
      break;
    case "error":
      showNotice(frame.message, "error");
      if (pendingFeedback) pendingFeedback.textContent = "Not saved.";
      pendingFeedback = null;
      if (pendingEdit) {
        // The edit was refused (busy, too long, ...): its text stays in its box.
        pendingEdit.querySelector("[data-edit-send]").disabled = busy;
        pendingEdit = null;
      } else if (frame.text && input && !input.value) input.value = frame.text;
      break;
  }
}

function startAnswer(id, html) {
  hideNotice();
  let element = findMessage(id);
  if (!element) {
    element = fromServer(html);
    place(element);
  }
  stopWaiting();
  current = { id, text: "", element, shown: "", renderTimer: null, slowTimer: null };
  waitForTokens();
  setBusy(true);
  follow.grew();
}

// A new answer goes where the server put it, so that the page shows what a reload shows. A chat
// answer names its turn (data-turn): the turn's earlier versions (Regenerate keeps them) are
// hidden behind it, and the failed answers it replaces (data-replaces) go. Elsewhere a new
// answer replaces the answers after the last question (Retry).
function place(element) {
  if (element.dataset.turn === undefined) {
    replacedAnswers().forEach((old) => old.remove());
    list.append(element);
    return;
  }
  for (const id of (element.dataset.replaces || "").split(" ").filter(Boolean)) findMessage(id)?.remove();
  const versions = versionsOf(element.dataset.turn);
  versions.forEach((version) => (version.hidden = true));
  if (versions.length) versions[versions.length - 1].after(element);
  else list.append(element);
  numberVersions(element.dataset.turn);
}

// The AI answers at the end of the thread, after the last message of a person.
function replacedAnswers() {
  const answers = [];
  for (let node = list.lastElementChild; node; node = node.previousElementSibling) {
    if (node.dataset.role !== "assistant") break;
    answers.push(node);
  }
  return answers;
}

// The answer shows that it is being worked on until its first token, and says so plainly when
// tokens stop coming for a while.
function waitForTokens() {
  clearTimeout(current.slowTimer);
  current.element.querySelector("[data-slow]")?.remove();
  const answer = current;
  current.slowTimer = setTimeout(() => {
    if (current !== answer) return;
    const note = element("p", "slow-note", answer.text ? "The provider is slow: still waiting for the rest of the answer…" : "The provider is slow to answer: still waiting…");
    note.dataset.slow = "";
    note.setAttribute("role", "status");
    answer.element.querySelector(".answer-footer")?.before(note);
    follow.grew();
  }, SLOW_AFTER_MS);
}

function stopWaiting() {
  if (!current) return;
  clearTimeout(current.slowTimer);
  clearTimeout(current.renderTimer);
  current.element.querySelector("[data-slow]")?.remove();
}

function applyDelta(frame) {
  if (!current || current.id !== frame.message_id) {
    if (!findMessage(frame.message_id)) return; // its start was missed: the snapshot brings it
    startAnswer(frame.message_id);
  }
  setText(withDelta(current.text, frame)); // a gap: the next snapshot brings the whole text
}

function setText(text) {
  if (text === current.text) return;
  current.text = text;
  waitForTokens();
  if (current.renderTimer === null) {
    const answer = current;
    // The first text at once, then a few renders a second, whatever the rate of tokens.
    const delay = answer.shown ? RENDER_EVERY_MS : 0;
    answer.renderTimer = setTimeout(() => render(answer), delay);
  }
}

async function render(answer) {
  const { renderStreaming } = await renderer;
  answer.renderTimer = null;
  if (current !== answer || answer.shown === answer.text) return;
  answer.shown = answer.text;
  const body = answer.element.querySelector(".answer-body");
  body.innerHTML = renderStreaming(answer.text); // sanitised by DOMPurify
  body.classList.add("streaming");
  addCodeCopyButtons(answer.element);
  follow.grew();
}

function finishAnswer(frame) {
  const message = frame.message;
  const element = fromServer(frame.html);
  const previous = findMessage(message.id);
  if (previous) {
    element.hidden = previous.hidden;
    previous.replaceWith(element);
    if (element.dataset.turn !== undefined) numberVersions(element.dataset.turn);
  } else place(element);
  stopWaiting();
  current = null;
  setBusy(false);
  announce(message.status === "complete" ? "The answer is complete." : `The answer ${message.status === "stopped" ? "was stopped" : "failed"}.`);
  follow.grew();
}

function refused(frame) {
  stopWaiting();
  findMessage(frame.message_id)?.remove();
  if (frame.question_id) findMessage(frame.question_id)?.remove();
  // What the refused request had replaced comes back as it was (the latest versions shown).
  const turns = new Set();
  for (const html of frame.restored || []) {
    const element = fromServer(html);
    const old = findMessage(element.dataset.messageId);
    if (old) old.replaceWith(element);
    else list.append(element);
    if (element.dataset.turn !== undefined) turns.add(element.dataset.turn);
  }
  turns.forEach(numberVersions);
  if (frame.title) showTitle(frame.title);
  current = null;
  setBusy(false);
  showNotice(frame.message, "error", frame.more_url ? { href: frame.more_url, text: "See plans" } : null);
  if (frame.client_id !== clientId || !frame.text) return;
  const edited = frame.edited_id ? findMessage(frame.edited_id) : null;
  if (edited) {
    // A refused edit: back in its box, as it was typed.
    pendingEdit = null;
    openEdit(edited, frame.text);
  } else if (input && !input.value) {
    input.value = frame.text;
    grow();
  }
}

// --- Versions of an answer (Regenerate keeps the earlier ones): < 1/2 > ---------------------

function versionsOf(turn) {
  return [...list.querySelectorAll(`.message[data-turn="${turn}"]`)];
}

// Each version's "n/m" and its arrows; the controls show once a turn has two versions.
function numberVersions(turn) {
  const versions = versionsOf(turn);
  versions.forEach((version, index) => {
    const controls = version.querySelector("[data-versions]");
    if (!controls) return;
    controls.hidden = versions.length < 2;
    controls.querySelector("[data-version-label]").textContent = `${index + 1}/${versions.length}`;
    controls.querySelector(".version-prev").disabled = index === 0;
    controls.querySelector(".version-next").disabled = index === versions.length - 1;
  });
}

function showVersion(button, step) {
  const shown = button.closest(".message");
  const versions = versionsOf(shown.dataset.turn);
  const next = versions[versions.indexOf(shown) + step];
  if (!next) return;
  shown.hidden = true;
  next.hidden = false;
  const index = versions.indexOf(next);
  // The focus stays on the arrow pressed, or on the other one at either end.
  const same = next.querySelector(step < 0 ? ".version-prev" : ".version-next");
  (same.disabled ? next.querySelector(step < 0 ? ".version-next" : ".version-prev") : same).focus();
  announce(`Version ${index + 1} of ${versions.length}.`);
  setBusy(busy);
}

// --- Editing a question and sending it again ------------------------------------------------

// The edit sent, until the server takes it (user_message) or refuses it (error).
let pendingEdit = null;

function openEdit(message, text) {
  closeEdits();
  const body = message.querySelector(".user-text");
  let after = 0;
  for (let node = message.nextElementSibling; node; node = node.nextElementSibling) if (!node.hidden) after += 1;
  const form = element("form", "edit-form");
  form.dataset.edit = "";
  const label = element("label", "visually-hidden", "Edit your question");
  const box = element("textarea");
  box.id = `edit-${message.dataset.messageId}`;
  label.htmlFor = box.id;
  box.maxLength = input?.maxLength > 0 ? input.maxLength : 100000;
  box.value = text ?? body.textContent;
  const warning = element("p", "edit-warning", after ? `Sending replaces the ${after === 1 ? "answer" : `${after} messages`} after this message.` : "Sending asks again with this text.");
  warning.id = `${box.id}-warning`;
  box.setAttribute("aria-describedby", warning.id);
  const actions = element("div", "edit-actions");
  const cancel = element("button", "secondary small", "Cancel");
  cancel.type = "button";
  cancel.dataset.editCancel = "";
  const confirm = element("button", "small", after ? "Replace and send" : "Send");
  confirm.type = "submit";
  confirm.dataset.editSend = "";
  confirm.disabled = busy;
  actions.append(cancel, confirm);
  form.append(label, box, warning, actions);
  body.hidden = true;
  message.querySelector(".question-actions").hidden = true;
  message.classList.add("editing");
  body.after(form);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (busy || !box.value.trim()) return;
    confirm.disabled = true;
    pendingEdit = form;
    hideNotice();
    send({ type: "edit", message_id: Number(message.dataset.messageId), content: box.value, client_id: clientId });
  });
  form.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.preventDefault();
      closeEdit(message);
    }
  });
  box.focus();
  box.setSelectionRange(box.value.length, box.value.length);
}

function closeEdit(message) {
  message.querySelector("[data-edit]")?.remove();
  message.querySelector(".user-text").hidden = false;
  message.querySelector(".question-actions").hidden = false;
  message.classList.remove("editing");
  message.querySelector(".edit-question")?.focus();
}

function closeEdits() {
  for (const form of list.querySelectorAll("[data-edit]")) closeEdit(form.closest(".message"));
}

// The question `id` and everything after it leave the page (an edit replaced them).
function replaceFrom(id) {
  const from = findMessage(id);
  if (!from) return;
  pendingEdit = null;
  while (from.nextElementSibling) from.nextElementSibling.remove();
  from.remove();
}

// A ticket's status changed by staff: its badge at once. A resolved or closed ticket takes no
// more messages from its customer (the page offers to reopen it instead) and a reopened one
// does again: the page is loaded again when what it offers has to change.
function showStatus(status, label) {
  const badge = document.querySelector("[data-ticket-status]");
  if (badge) {
    badge.textContent = label;
    badge.className = `badge status-${status}`;
  }
  const finished = status === "resolved" || status === "closed";
  if (finished && humanButton) humanButton.hidden = true;
  const takesMessages = Boolean(composer);
  const shouldTake = !finished || Boolean(composer?.hasAttribute("data-stays-open"));
  if (takesMessages !== shouldTake && mayReload()) location.reload();
}

// At most one such reload a few seconds, whatever the server says.
function mayReload() {
  const key = `iridium-reloaded:${location.pathname}`;
  try {
    const last = Number(sessionStorage.getItem(key)) || 0;
    if (Date.now() - last < 5000) return false;
    sessionStorage.setItem(key, String(Date.now()));
  } catch {
    return false;
  }
  return true;
}

// --- Building messages (text only through textContent) ------------------------------------

function findMessage(id) {
  return list.querySelector(`[data-message-id="${id}"]`);
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// A message rendered by the server (live/_message.html and its parts), made an element. The
// server renders without knowing who looks: a person's own messages are labelled "You" here.
function fromServer(html) {
  const node = parseFromServer(html);
  for (const author of node.querySelectorAll("[data-author]")) {
    if (author.dataset.author === username) author.textContent = "You";
  }
  addCodeCopyButtons(node);
  return node;
}

function addCodeCopyButtons(scope) {
  for (const pre of scope.querySelectorAll(".answer-body pre")) {
    if (pre.previousElementSibling?.classList.contains("copy-code")) continue;
    const button = element("button", "copy-code secondary small", "Copy code");
    button.type = "button";
    pre.before(button);
  }
}

// --- The composer -------------------------------------------------------------------------

function setBusy(value) {
  busy = value;
  if (sendButton) sendButton.disabled = value;
  if (stopButton) stopButton.hidden = !value;
  for (const confirm of list.querySelectorAll("[data-edit-send]")) confirm.disabled = value || Boolean(pendingEdit);
  if (regenerateButton) {
    // Regenerate is one of the last answer's actions (beside Copy answer), when there is one:
    // of the version of it shown.
    const last = [...list.children].reverse().find((node) => !node.hidden);
    const footer = last?.dataset.role === "assistant" ? last.querySelector(".answer-footer") : null;
    regenerateButton.hidden = value || !footer;
    if (footer && !value) footer.append(regenerateButton);
  }
}

function grow() {
  if (!input) return;
  input.style.height = "auto";
  input.style.height = `${Math.min(input.scrollHeight, window.innerHeight * 0.4)}px`;
}

function submit() {
  const text = input.value;
  if (!text.trim() || busy) return;
  if (send({ type: "send", content: text, client_id: clientId })) {
    input.value = "";
    grow();
    hideNotice();
    follow.toEnd();
  }
}

// An error (a refusal) is announced at once; information (a hand-over) politely.
function showNotice(text, kind, link = null) {
  notice.textContent = text;
  if (link) {
    const anchor = document.createElement("a");
    anchor.href = link.href;
    anchor.textContent = link.text;
    notice.append(" ", anchor);
  }
  notice.classList.toggle("error", kind === "error");
  notice.setAttribute("role", kind === "error" ? "alert" : "status");
  notice.hidden = false;
  follow.grew();
}

function hideNotice() {
  notice.hidden = true;
  notice.textContent = "";
}

function announce(text) {
  announcer.textContent = text;
}

// A conversation's new title (from its first message): the heading, the tab and the sidebar.
function showTitle(title) {
  document.getElementById("stream-title").textContent = title;
  document.title = `${title} · Iridium`;
  const link = document.querySelector("[data-conversation-list] a[aria-current='page']");
  if (link) link.textContent = title;
}

async function copy(text, button) {
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = "Copied";
  } catch {
    button.textContent = "Copy failed";
  }
  setTimeout(() => {
    button.textContent = button.classList.contains("copy-code") ? "Copy code" : "Copy answer";
  }, 1500);
}

composer?.addEventListener("submit", (event) => {
  event.preventDefault();
  submit();
});
input?.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    submit();
  }
});
input?.addEventListener("input", grow);
stopButton?.addEventListener("click", () => send({ type: "stop" }));
regenerateButton?.addEventListener("click", () => send({ type: "regenerate" }));
humanButton?.addEventListener("click", () => send({ type: "human" }));
list.addEventListener("click", (event) => {
  const button = event.target.closest("button");
  if (!button) return;
  if (button.classList.contains("retry")) send({ type: "retry" });
  if (button.classList.contains("copy-answer")) {
    copy(button.closest(".message").querySelector(".answer-raw").textContent, button);
  }
  if (button.classList.contains("copy-code")) copy(button.nextElementSibling.textContent, button);
  if (button.classList.contains("feedback-thumb")) giveFeedback(button, button.dataset.rating);
  if (button.classList.contains("version-prev")) showVersion(button, -1);
  if (button.classList.contains("version-next")) showVersion(button, 1);
  if (button.classList.contains("edit-question")) openEdit(button.closest(".message"));
  if (button.hasAttribute("data-edit-cancel")) closeEdit(button.closest(".message"));
  if (button.classList.contains("feedback-send")) {
    const pressed = button.closest("[data-feedback]").querySelector('[aria-pressed="true"]');
    giveFeedback(button, pressed ? pressed.dataset.rating : "");
  }
});

// --- Feedback on answers: thumbs up or down, and an optional comment --------------------------

// The status line of the feedback on its way: an error frame answers it.
let pendingFeedback = null;

function giveFeedback(button, rating) {
  const box = button.closest("[data-feedback]");
  const status = box.querySelector(".feedback-status");
  if (!rating) {
    status.textContent = "Choose thumbs up or down first.";
    return;
  }
  const comment = box.querySelector(".feedback-comment").value;
  status.textContent = "Sending…";
  pendingFeedback = status;
  send({
    type: "feedback",
    message_id: Number(button.closest(".message").dataset.messageId),
    rating,
    comment,
  });
}

function showFeedback(frame) {
  const box = findMessage(frame.message_id)?.querySelector("[data-feedback]");
  pendingFeedback = null;
  if (!box) return;
  for (const thumb of box.querySelectorAll(".feedback-thumb")) {
    thumb.setAttribute("aria-pressed", String(thumb.dataset.rating === frame.rating));
  }
  box.querySelector(".feedback-comment").value = frame.comment;
  box.querySelector(".feedback-status").textContent = "Thanks for your feedback.";
}

addCodeCopyButtons(list);
setBusy(false);
follow.toEnd();
socket.open();
