// The socket of a page where answers stream (stream-page.js: a conversation, a ticket, a
// creation; public-demo.js: the home page's demo), in one place: it opens on the page's own
// host, speaks JSON frames of iridium/live/protocol.py, keeps what is sent while it is away and
// sends it once open, and reconnects by itself unless the server refused the page for good.
// Also here: a message rendered by the server (live/_message.html) made an element, and an
// answer's text with a `delta` frame applied.

// Close codes of iridium/live/protocol.py: the server refused the page, reconnecting is useless.
export const CLOSE_UNAUTHENTICATED = 4401;
export const CLOSE_FORBIDDEN = 4403;

// Reconnecting waits this long after a first loss, doubling up to the most, plus a little jitter.
const RETRY_FIRST_MS = 500;
const RETRY_MOST_MS = 10000;

// `path`: the socket's path. `onFrame(frame)` takes each frame from the server; `onOpen()` runs
// once the socket is open (again); `onLost()` when it closed and will reconnect; `onRefused(code)`
// when the server refused the page (CLOSE_UNAUTHENTICATED, CLOSE_FORBIDDEN: no reconnecting).
// `open()` opens it (a page may wait for its first question); `send(frame)` sends a frame now,
// or once the socket is open (and returns whether it went now); `drop()` forgets what waits.
export function liveSocket(path, { onFrame, onOpen = () => {}, onLost = () => {}, onRefused = () => {} }) {
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const url = `${scheme}${location.host}${path}`;
  // Frames written while the socket is (re)connecting wait here.
  const outbox = [];
  let socket = null;
  let attempts = 0;

  function open() {
    socket = new WebSocket(url);
    socket.addEventListener("open", () => {
      attempts = 0;
      while (outbox.length) socket.send(outbox.shift());
      onOpen();
    });
    socket.addEventListener("message", (event) => onFrame(JSON.parse(event.data)));
    socket.addEventListener("close", (event) => {
      if (event.code === CLOSE_UNAUTHENTICATED || event.code === CLOSE_FORBIDDEN) {
        onRefused(event.code);
        return;
      }
      const delay = Math.min(RETRY_MOST_MS, RETRY_FIRST_MS * 2 ** attempts) + Math.random() * 250;
      attempts += 1;
      onLost();
      setTimeout(open, delay);
    });
  }

  function send(frame) {
    const text = JSON.stringify(frame);
    if (socket?.readyState === WebSocket.OPEN) {
      socket.send(text);
      return true;
    }
    outbox.push(text);
    return false;
  }

  return {
    open,
    send,
    drop: () => {
      outbox.length = 0;
    },
  };
}

// A message rendered by the server (live/_message.html and its parts), made an element.
export function fromServer(html) {
  const template = document.createElement("template");
  template.innerHTML = html;
  return template.content.firstElementChild;
}

// An answer's text `text` with a `delta` frame applied: the frame's new part added (its
// `offset` is the length of the text before it), or the text as it was when the frame leaves
// a gap (the next snapshot, or the finished answer, brings the whole text).
export function withDelta(text, frame) {
  if (frame.offset > text.length) return text;
  return text + frame.text.slice(text.length - frame.offset);
}
