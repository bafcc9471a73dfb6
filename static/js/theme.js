// The colour theme the person chose (light or dark), applied before the page is drawn so that
// it never flashes in the other one. Without a choice the page follows the system's setting.
// Loaded as a plain script in <head>; site.js holds the toggle.
(function applyChosenTheme() {
  try {
    var chosen = localStorage.getItem("iridium-theme");
    if (chosen === "light" || chosen === "dark") document.documentElement.dataset.theme = chosen;
  } catch (error) {
    // Storage blocked: the system's setting applies.
  }
})();
