// PostHog in the browser: loaded only when the server sets POSTHOG_WEB_KEY, after the vendored
// posthog-js (static/vendor/posthog-js), with its settings in the page's #posthog-config
// (iridium/ai/browser.py; no inline script under the CSP).
//
// The person is identified with the distinct id the server's AI events carry for them (their
// pseudonym where their plan asks for one), pageviews are recorded, and so is a session replay
// that masks every text input and the text of conversations (all text on privacy-mode plans).
// The session id reaches the server with what starts an AI call: a header on fetches
// (tracing_headers), a field of posted forms (below), the frames of stream-page.js.

(function () {
  const element = document.getElementById("posthog-config");
  const posthog = window.posthog;
  if (!element || !posthog || typeof posthog.init !== "function") return;
  const config = JSON.parse(element.textContent);

  posthog.init(config.key, {
    api_host: config.apiHost,
    ui_host: config.uiHost || undefined,
    // Everything the page needs is in the vendored bundle: no script from PostHog's CDN.
    disable_external_dependency_loading: true,
    person_profiles: "identified_only",
    capture_pageview: true,
    capture_pageleave: true,
    // Clicks' text could be a conversation's: no autocapture, heatmaps or surveys.
    autocapture: false,
    enable_heatmaps: false,
    capture_dead_clicks: false,
    disable_surveys: true,
    tracing_headers: [window.location.hostname],
    session_recording: {
      maskAllInputs: true,
      maskTextSelector: config.maskTextSelector,
    },
  });

  if (config.distinctId) {
    if (posthog.get_distinct_id() !== config.distinctId) posthog.identify(config.distinctId);
    if (config.organization) posthog.group("company", config.organization);
  } else if (posthog.get_property("$user_state") === "identified") {
    posthog.reset(); // signed out: the next person on this browser is someone new
  }

  // A form cannot send headers: a posted form carries the session id in a field, which the
  // server reads as the X-POSTHOG-SESSION-ID header (iridium.web.middleware).
  document.addEventListener(
    "submit",
    (event) => {
      const form = event.target;
      if (!(form instanceof HTMLFormElement) || form.method.toLowerCase() !== "post") return;
      const sessionId = posthog.get_session_id();
      if (!sessionId) return;
      let field = form.querySelector('input[name="posthog_session_id"]');
      if (!field) {
        field = document.createElement("input");
        field.type = "hidden";
        field.name = "posthog_session_id";
        form.append(field);
      }
      field.value = sessionId;
    },
    true,
  );
})();
