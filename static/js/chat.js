/* Streams a chat answer from POST /api/v1/chats/{id}/messages (stream: true),
   reading the text/event-stream body with fetch. Stop aborts the request: the
   server ends the upstream call and records what was produced; we then read
   the saved message back (GET /api/v1/chats/{id}) to show its real tokens. */
(function () {
  "use strict";
  const form = document.getElementById("chat-form");
  const input = document.getElementById("chat-input");
  const send = document.getElementById("chat-send");
  const stop = document.getElementById("chat-stop");
  const list = document.getElementById("messages");
  const errorBox = document.getElementById("chat-error");
  let controller = null;

  function bubble(role, text) {
    const empty = document.getElementById("chat-empty");
    if (empty) empty.remove();
    const article = document.createElement("article");
    article.className = "msg msg-" + role;
    article.dataset.role = role;
    const header = document.createElement("header");
    const who = document.createElement("strong");
    who.textContent = role === "user" ? "You" : "Assistant";
    header.appendChild(who);
    const content = document.createElement("div");
    content.className = "msg-content";
    content.textContent = text || "";
    article.append(header, content);
    list.appendChild(article);
    article.scrollIntoView({ block: "end" });
    return article;
  }

  function note(text, before) {
    const p = document.createElement("p");
    p.className = "muted trimmed-note";
    p.dataset.testid = "trimmed-note";
    p.textContent = text;
    list.insertBefore(p, before);
  }

  function badge(article, text) {
    const span = document.createElement("span");
    span.className = "badge badge-warn";
    span.textContent = text;
    article.querySelector("header").append(" ", span);
  }

  function footer(article, usage) {
    const f = document.createElement("footer");
    f.className = "muted";
    const small = document.createElement("small");
    small.textContent = Tollgate.formatNumber(usage.total_tokens) + " tokens";
    const copy = document.createElement("button");
    copy.type = "button";
    copy.className = "secondary outline copy-btn";
    copy.textContent = "Copy";
    const content = article.querySelector(".msg-content");
    content.id = content.id || "msg-live-" + Date.now();
    copy.dataset.copyTarget = "#" + content.id;
    f.append(small, copy);
    article.appendChild(f);
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  // After Stop: the server records the stopped answer a moment later; show
  // the tokens the ledger charged (polls until the message is no longer streaming).
  async function showStopped(article) {
    for (let i = 0; i < 40; i++) {
      await sleep(250);
      let data;
      try {
        const answer = await Tollgate.api(form.dataset.chatUrl, { method: "GET", raw: true });
        if (!answer.ok) continue;
        data = await answer.response.json();
      } catch (e) { continue; }
      const last = data.messages.filter((m) => m.role === "assistant").pop();
      if (!last || last.status === "streaming") continue;
      article.id = "msg-" + last.id;
      article.dataset.status = last.status;
      if (!article.querySelector("footer")) footer(article, last.usage);
      return;
    }
  }

  function busy(on) {
    send.disabled = on;
    send.setAttribute("aria-busy", on ? "true" : "false");
    stop.hidden = !on;
    input.disabled = on;
  }

  function handle(event, data, article) {
    const content = article.querySelector(".msg-content");
    if (event === "delta") {
      content.textContent += data.text;
      article.scrollIntoView({ block: "end" });
    } else if (event === "error") {
      badge(article, "failed");
      Tollgate.renderError(errorBox, data);
    } else if (event === "usage") {
      footer(article, data);
    } else if (event === "done") {
      article.id = "msg-" + data.id;
      article.dataset.status = data.status;
      const title = document.querySelector("[data-testid=chat-title]");
      if (data.title && title) title.textContent = data.title;
      if (data.omitted_messages > 0) {
        const n = data.omitted_messages;
        note(n + " earlier message" + (n === 1 ? "" : "s") + " not sent — they don't fit the model's context.", article);
      }
    }
  }

  async function readStream(response, article) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let event = "message";
        let data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data += line.slice(5).trim();
        }
        handle(event, data ? JSON.parse(data) : {}, article);
      }
    }
  }

  async function submit() {
    const text = input.value.trim();
    if (!text || controller) return;
    errorBox.hidden = true;
    const userBubble = bubble("user", text);
    input.value = "";
    const article = bubble("assistant", "");
    const content = article.querySelector(".msg-content");
    content.classList.add("typing");
    controller = new AbortController();
    busy(true);
    try {
      const answer = await Tollgate.api(form.dataset.url, {
        json: { content: text, stream: true },
        raw: true,
        signal: controller.signal,
      });
      if (!answer.ok) {
        let data = {};
        try { data = await answer.response.json(); } catch (e) { /* not JSON */ }
        article.remove();
        userBubble.remove();
        input.value = text;
        Tollgate.renderError(errorBox, data.error ? data : { error: { message: "The message could not be sent (" + answer.status + ").", details: {} } });
        return;
      }
      await readStream(answer.response, article);
    } catch (err) {
      if (err.name === "AbortError") {
        badge(article, "stopped");
        await showStopped(article);
      } else {
        badge(article, "failed");
        Tollgate.renderError(errorBox, { error: { message: "The connection broke before the answer finished. Try again.", details: {} } });
      }
    } finally {
      content.classList.remove("typing");
      controller = null;
      busy(false);
      input.focus();
    }
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    submit();
  });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      submit();
    }
  });
  stop.addEventListener("click", function () {
    if (controller) controller.abort();
  });
  send.disabled = false; // ready: until now the button was off (see chat_detail.html)
})();
