// What every page shares: the colour-theme toggle, the conversation drawer on narrow screens,
// and "/" to reach the composer.

const THEME_KEY = "iridium-theme";
const THEMES = ["system", "dark", "light"]; // the toggle's order
const systemDark = window.matchMedia("(prefers-color-scheme: dark)");

function chosenTheme() {
  const value = document.documentElement.dataset.theme;
  return value === "light" || value === "dark" ? value : "system";
}

function showTheme() {
  const chosen = chosenTheme();
  const shown = chosen === "system" ? (systemDark.matches ? "dark" : "light") : chosen;
  for (const button of document.querySelectorAll("[data-theme-toggle]")) {
    const label = chosen === "system" ? `follows the system (${shown})` : shown;
    button.setAttribute("aria-label", `Colour theme: ${label}. Change it`);
    button.title = `Colour theme: ${label}`;
    button.querySelector("[data-theme-icon]").textContent = chosen === "system" ? "◐" : shown === "dark" ? "☾" : "☀";
  }
}

function setTheme(theme) {
  if (theme === "system") delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = theme;
  try {
    if (theme === "system") localStorage.removeItem(THEME_KEY);
    else localStorage.setItem(THEME_KEY, theme);
  } catch {
    // Storage blocked: the choice lasts for this page only.
  }
  showTheme();
}

for (const button of document.querySelectorAll("[data-theme-toggle]")) {
  button.addEventListener("click", () => {
    setTheme(THEMES[(THEMES.indexOf(chosenTheme()) + 1) % THEMES.length]);
  });
}
systemDark.addEventListener("change", showTheme);
showTheme();

// A panel (the conversation list) that narrow screens keep behind a toggle; Escape closes it.
for (const toggle of document.querySelectorAll("[data-drawer-toggle]")) {
  const drawer = document.getElementById(toggle.getAttribute("aria-controls"));
  const show = (open) => {
    toggle.setAttribute("aria-expanded", String(open));
    drawer.classList.toggle("open", open);
  };
  toggle.addEventListener("click", () => {
    const open = toggle.getAttribute("aria-expanded") !== "true";
    show(open);
    if (open) drawer.querySelector("a, button")?.focus();
  });
  drawer.addEventListener("keydown", (event) => {
    if (event.key !== "Escape" || toggle.getAttribute("aria-expanded") !== "true") return;
    show(false);
    toggle.focus();
  });
}

// "/" focuses the composer, unless the person is typing somewhere.
document.addEventListener("keydown", (event) => {
  if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
  const target = event.target;
  if (target.closest?.("input, textarea, select, [contenteditable='true']")) return;
  const composer = document.querySelector("[data-composer] textarea");
  if (!composer) return;
  event.preventDefault();
  composer.focus();
});
