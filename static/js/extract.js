(function () {
  "use strict";
  const form = document.getElementById("extract-form");
  const rows = document.getElementById("field-rows");
  const template = document.getElementById("field-row-template");
  const errorBox = document.getElementById("extract-error");
  const submit = document.getElementById("extract-submit");
  const progress = document.getElementById("extract-progress");
  const result = document.getElementById("extract-result");

  function addRow(name, type, description) {
    const row = template.content.firstElementChild.cloneNode(true);
    row.querySelector("[name=field-name]").value = name || "";
    row.querySelector("[name=field-type]").value = type || "string";
    row.querySelector("[name=field-description]").value = description || "";
    rows.appendChild(row);
    return row;
  }

  rows.addEventListener("click", function (e) {
    if (e.target.closest(".remove-field")) {
      e.target.closest("tr").remove();
      if (!rows.children.length) addRow();
    }
  });
  document.getElementById("add-field").addEventListener("click", () => addRow().querySelector("input").focus());
  document.getElementById("example-fields").addEventListener("click", function () {
    rows.replaceChildren();
    addRow("vendor", "string", "who issued the invoice");
    addRow("total", "number", "the amount due");
    addRow("due_date", "date", "when payment is due");
    addRow("paid", "boolean", "whether it is marked as paid");
  });
  addRow();

  function fields() {
    return Array.from(rows.querySelectorAll("tr")).map((tr) => ({
      name: tr.querySelector("[name=field-name]").value.trim(),
      type: tr.querySelector("[name=field-type]").value,
      description: tr.querySelector("[name=field-description]").value.trim(),
    })).filter((f) => f.name || f.description);
  }

  function show(data) {
    const tbody = result.querySelector("tbody");
    tbody.replaceChildren();
    for (const [name, value] of Object.entries(data.data)) {
      const tr = document.createElement("tr");
      const th = document.createElement("th");
      th.textContent = name;
      const td = document.createElement("td");
      td.textContent = value === null ? "—" : String(value);
      if (value === null) td.className = "muted";
      tr.append(th, td);
      tbody.appendChild(tr);
    }
    document.getElementById("result-json").textContent = JSON.stringify(data.data, null, 2);
    const u = data.usage;
    document.getElementById("result-usage").textContent =
      Tollgate.formatNumber(u.total_tokens) + " tokens (" + Tollgate.formatNumber(u.input_tokens) +
      " in, " + Tollgate.formatNumber(u.output_tokens) + " out) · model " + data.model;
    document.getElementById("result-link").href = "/extract/runs/" + data.id + "/";
    document.getElementById("download-csv").href = "/extract/runs/" + data.id + "/download.csv";
    document.getElementById("download-json").href = "/extract/runs/" + data.id + "/download.json";
    result.hidden = false;
  }

  form.addEventListener("submit", async function (e) {
    e.preventDefault();
    errorBox.hidden = true;
    const file = document.getElementById("extract-file").files[0];
    const documentId = document.getElementById("extract-document").value;
    const text = document.getElementById("extract-text").value;
    let options;
    if (file || documentId) {
      const data = new FormData();
      if (file) data.append("document", file);
      else data.append("document_id", documentId);
      data.append("fields", JSON.stringify(fields()));
      options = { form: data };
    } else {
      options = { json: { text: text, fields: fields() } };
    }
    submit.setAttribute("aria-busy", "true");
    submit.disabled = true;
    progress.hidden = false;
    try {
      const answer = await Tollgate.api("/api/v1/extractions", options);
      if (answer.ok) show(answer.data);
      else Tollgate.renderError(errorBox, answer.data);
    } finally {
      submit.removeAttribute("aria-busy");
      submit.disabled = false;
      progress.hidden = true;
    }
  });
})();
