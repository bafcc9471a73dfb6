// Keeping the newest text in view. The page scrolls as a whole and the composer sticks to the
// bottom of its section, so the end of the page is the one place where the newest message sits
// fully above the composer. The view follows new text while the person is at (or near) the end;
// once they scroll up it stays where they are and offers a "Jump to latest" button instead.

const NEAR_END_PX = 80;

export function follower(jumpButton = document.createElement("button")) {
  let following = true;
  // Where toEnd() last put the page. A scroll event arrives a frame after the scroll itself, so
  // text that grows in between must not read a stale "following" and undo a scroll up.
  let followedTop = 0;

  function distanceToEnd() {
    const page = document.scrollingElement;
    return page.scrollHeight - (page.scrollTop + window.innerHeight);
  }

  function toEnd() {
    following = true;
    jumpButton.hidden = true;
    window.scrollTo({ top: document.scrollingElement.scrollHeight, behavior: "instant" });
    followedTop = document.scrollingElement.scrollTop;
  }

  // The person scrolled (or the page did): follow again once they are back at the end.
  window.addEventListener(
    "scroll",
    () => {
      following = distanceToEnd() <= NEAR_END_PX;
      if (following) jumpButton.hidden = true;
    },
    { passive: true },
  );

  jumpButton.addEventListener("click", () => {
    toEnd();
    jumpButton.blur();
  });

  return {
    // New text arrived: keep it in view, or say there is more below.
    grew() {
      if (following && document.scrollingElement.scrollTop < followedTop - 1) following = false;
      if (following) toEnd();
      else if (distanceToEnd() > NEAR_END_PX) jumpButton.hidden = false;
    },
    // The person sent a message or opened the page: show the end whatever they were reading.
    toEnd,
  };
}
