// The account_data export on the privacy pages: queue a job through the API,
// poll its progress, then offer the download. The job id is remembered so a
// reload keeps following it.
(function () {
  "use strict";
  function setUp(panel) {
    var scope = panel.dataset.exportScope;
    var storeKey = "tollgate-export-" + scope;
    var button = panel.querySelector("[data-export-start]");
    var bar = panel.querySelector("[data-export-progress]");
    var status = panel.querySelector("[data-export-status]");
    var link = panel.querySelector("[data-export-download]");

    function show(job) {
      bar.hidden = job.status === "done" || job.status === "failed";
      bar.value = job.progress || 0;
      if (job.status === "done" && job.download_url) {
        status.textContent = "Ready. The file is kept for a day.";
        link.href = job.download_url;
        link.hidden = false;
        button.disabled = false;
      } else if (job.status === "failed") {
        status.textContent = "The export failed. Try again.";
        button.disabled = false;
        localStorage.removeItem(storeKey);
      } else {
        status.textContent = "Preparing your export… " + (job.progress || 0) + " %";
        setTimeout(function () { poll(job.id); }, 1000);
      }
    }
    function poll(id) {
      fetch("/api/v1/exports/" + id, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : Promise.reject(r); })
        .then(show)
        .catch(function () { localStorage.removeItem(storeKey); });
    }
    button.addEventListener("click", function () {
      button.disabled = true;
      link.hidden = true;
      status.textContent = "Starting…";
      fetch("/api/v1/exports", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": panel.dataset.csrf },
        body: JSON.stringify({ kind: "account_data", format: "zip", scope: scope }),
      })
        .then(function (r) { return r.json().then(function (b) { return { ok: r.ok, body: b }; }); })
        .then(function (res) {
          if (!res.ok) {
            status.textContent = (res.body.error && res.body.error.message) || "The export could not start.";
            button.disabled = false;
            return;
          }
          localStorage.setItem(storeKey, res.body.id);
          show(res.body);
        });
    });
    var pending = localStorage.getItem(storeKey);
    if (pending) { poll(pending); }
  }
  document.querySelectorAll("[data-export-scope]").forEach(setUp);
})();
