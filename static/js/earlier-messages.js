// A long conversation opens with its latest messages; earlier ones come a page at a time when
// the person asks (the button) or scrolls to the top, without moving what they are reading.

const button = document.querySelector("[data-earlier]");
const list = document.querySelector("[data-messages]");

if (button && list) {
  let loading = false;

  async function loadEarlier() {
    if (loading || !button.dataset.before) return;
    loading = true;
    button.disabled = true;
    button.textContent = "Loading earlier messages…";
    try {
      const url = `${button.dataset.url}?before=${encodeURIComponent(button.dataset.before)}`;
      const response = await fetch(url, { headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const page = await response.json();
      const anchor = list.firstElementChild;
      const top = anchor ? anchor.getBoundingClientRect().top : 0;
      const template = document.createElement("template");
      template.innerHTML = page.html; // rendered and escaped by the server's message template
      list.prepend(template.content);
      if (anchor) window.scrollBy({ top: anchor.getBoundingClientRect().top - top, behavior: "instant" });
      if (page.before) {
        button.dataset.before = String(page.before);
        button.textContent = "Show earlier messages";
        button.disabled = false;
      } else {
        button.remove();
        observer?.disconnect();
      }
    } catch {
      button.textContent = "Could not load earlier messages. Try again";
      button.disabled = false;
    } finally {
      loading = false;
    }
  }

  button.addEventListener("click", loadEarlier);
  // Scrolling up to the button loads the page before, as chat products do: once the page has
  // scrolled at all (it opens at the latest message), not while it is still opening.
  let scrolled = false;
  window.addEventListener("scroll", () => (scrolled = true), { passive: true, once: true });
  const observer =
    "IntersectionObserver" in window
      ? new IntersectionObserver((entries) => {
          if (scrolled && entries.some((entry) => entry.isIntersecting)) loadEarlier();
        })
      : null;
  observer?.observe(button);
}
