/* Shared helpers for the feature pages: calling our API with the session,
   errors that say what to do next, copy buttons. No framework, no CDN. */
(function () {
  "use strict";

  function csrfToken() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || "";
    } catch (e) {
      return "";
    }
  }

  async function api(url, options) {
    options = options || {};
    const headers = { "X-CSRFToken": csrfToken(), Accept: "application/json" };
    let body = options.form;
    if (options.json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(options.json);
    }
    let response;
    try {
      response = await fetch(url, {
        method: options.method || "POST",
        headers: headers,
        body: body,
        credentials: "same-origin",
        signal: options.signal,
      });
    } catch (err) {
      if (err.name === "AbortError") throw err;
      return { ok: false, status: 0, data: { error: { code: "network", message: "Could not reach Tollgate. Check your connection and try again.", details: {} } } };
    }
    if (options.raw) return { ok: response.ok, status: response.status, response: response };
    let data = {};
    try {
      data = await response.json();
    } catch (e) {
      data = { error: { code: "internal_error", message: "Something went wrong on our side. Try again in a moment.", details: {} } };
    }
    return { ok: response.ok, status: response.status, data: data };
  }

  const NEXT_STEP = {
    quota_exceeded: "Your plan's tokens for this period are used up.",
    spend_cap_reached: "Ask an owner or admin to raise the cap, or wait for the next period.",
    rate_limited: "Wait a moment and try again.",
    content_flagged: "Rephrase the input and try again. You were not charged.",
    upstream_error: "Try again in a moment.",
    upstream_unavailable: "The model provider is busy. Try again in a minute.",
    upstream_timeout: "Try again, perhaps with a shorter input.",
    payload_too_large: "Shorten the input or upload a smaller file.",
    unsupported_media_type: "Upload a .txt, .md, .pdf or .docx file.",
  };

  // "fields[0].name" → "Field 1: name"; "text" → "Text" — words, not paths.
  function fieldLabel(key) {
    return key
      .replace(/^([a-z_]+)\[(\d+)\]\.?/, function (_m, list, i) {
        const noun = list.replace(/s$/, "").replace(/_/g, " ");
        return noun.charAt(0).toUpperCase() + noun.slice(1) + " " + (Number(i) + 1) + ": ";
      })
      .replace(/_/g, " ")
      .replace(/^./, (c) => c.toUpperCase())
      .replace(/: $/, "");
  }

  function renderError(el, payload) {
    const error = (payload && payload.error) || { message: "Something went wrong.", details: {} };
    const details = error.details || {};
    el.replaceChildren();
    el.hidden = false;
    const fieldErrors = Object.entries(details).filter(
      ([k, v]) => Array.isArray(v) && !["request_ids"].includes(k)
    );
    const strong = document.createElement("strong");
    // A generic "Some fields are not valid." says nothing: name what to fix.
    strong.textContent = /^Some fields are not valid/.test(error.message) && fieldErrors.length
      ? "Please fix " + (fieldErrors.length === 1 ? "this:" : "these " + fieldErrors.length + " things:")
      : error.message;
    el.appendChild(strong);
    const hint = NEXT_STEP[error.code];
    if (hint && hint !== error.message) {
      el.appendChild(document.createTextNode(" " + hint));
    }
    if (details.upgrade_url) {
      el.appendChild(document.createTextNode(" "));
      const a = document.createElement("a");
      a.href = details.upgrade_url;
      a.textContent = details.next_plan ? "Upgrade to " + details.next_plan : "See upgrade options";
      a.dataset.testid = "upgrade-link";
      el.appendChild(a);
    }
    if (fieldErrors.length) {
      const ul = document.createElement("ul");
      for (const [field, problems] of fieldErrors) {
        const li = document.createElement("li");
        li.textContent = fieldLabel(field) + " — " + problems.join(" ");
        ul.appendChild(li);
      }
      el.appendChild(ul);
    }
  }

  async function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      try {
        await navigator.clipboard.writeText(text);
        return true;
      } catch (e) { /* fall through */ }
    }
    const area = document.createElement("textarea");
    area.value = text;
    document.body.appendChild(area);
    area.select();
    const ok = document.execCommand("copy");
    area.remove();
    return ok;
  }

  document.addEventListener("click", async function (event) {
    const button = event.target.closest("[data-copy-target]");
    if (!button) return;
    event.preventDefault();
    const target = document.querySelector(button.dataset.copyTarget);
    if (!target) return;
    const text = target.dataset.copyText || target.value || target.textContent;
    const ok = await copyText(text);
    const label = button.textContent;
    button.textContent = ok ? "Copied" : "Copy failed";
    setTimeout(() => (button.textContent = label), 1500);
  });

  function formatNumber(n) {
    return Number(n || 0).toLocaleString("en-US");
  }

  window.Tollgate = { api: api, renderError: renderError, copyText: copyText, csrfToken: csrfToken, formatNumber: formatNumber };
})();
