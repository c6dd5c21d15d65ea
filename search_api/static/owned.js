// "Your documents": who received passages of the documents the caller's partner owns, or
// downloaded them, and when (GET /v1/audit/owned); for an admin, every owner's
// (GET /v1/admin/audit/owned). The period goes to the API; document and partner filter what
// it answered, in the page. The CSV holds exactly the rows shown.
"use strict";

import { drawDays } from "./chart.js";
import {
  $, apiKey, askForKey, callApi, element, setStatus, showLinks, utcMinute,
} from "./session.js";

const KINDS = { passages: "Passages", download: "Download" };
let me = null; // GET /v1/me: who is looking
let report = null; // the API's last answer, for the period (and owner) chosen

async function start() {
  const answer = await callApi("/v1/me");
  if (answer.status === 401) {
    askForKey(apiKey() ? "Key refused: this API key is unknown or has been revoked. Enter "
      + "another key." : "Enter your API key to see who received your documents.", start);
    return;
  }
  if (!answer.ok) {
    setStatus(problem(answer), "error");
    return;
  }
  me = answer.data;
  showLinks(me);
  if (me.admin) {
    document.body.classList.add("all-owners");
    $("title").textContent = "Documents of all owners";
    document.title = "Documents of all owners · Partner knowledge search";
    $("intro").textContent = "Which partners received passages of each owner's documents, or "
      + "downloaded them, and when: what each owner sees on its own page. Times are UTC.";
    $("owner-field").hidden = false;
  }
  $("filters").hidden = false;
  await load();
}

function problem(answer) {
  return answer.status === 0
    ? "The service cannot be reached. Check the network and try again."
    : "The service had a problem (HTTP " + answer.status + "). Try again in a moment; if it "
      + "persists, tell the service's administrators." + (answer.message ? " " + answer.message
      : "");
}

function query() {
  const params = new URLSearchParams();
  if ($("from").value) params.set("from", $("from").value + "T00:00:00Z");
  if ($("to").value) params.set("to", $("to").value + "T23:59:59.999999Z");
  if (me.admin && $("owner").value) params.set("owner", $("owner").value);
  return params.toString();
}

async function load() {
  if ($("from").value && $("to").value && $("from").value > $("to").value) {
    showNothing();
    setStatus("The period ends before it starts: choose a “To” date after the “From” date.",
      "error");
    return;
  }
  setStatus("Loading…");
  const path = me.admin ? "/v1/admin/audit/owned" : "/v1/audit/owned";
  const answer = await callApi(path + "?" + query());
  if (answer.status === 401) {
    askForKey("Key refused: enter your API key again.", start);
    return;
  }
  if (!answer.ok || !answer.data || !Array.isArray(answer.data.receipts)) {
    showNothing();
    setStatus(answer.status === 422 ? "The filter could not be applied: " + answer.message
      : problem(answer), "error");
    return;
  }
  report = answer.data;
  fillChoices();
  render();
}

// Options of a <select>: the values of the answer, the current choice kept while it exists.
function fill(select, values, everything) {
  const chosen = select.value;
  const options = [element("option", everything)];
  options[0].value = "";
  for (const value of [...new Set(values)].sort()) {
    const option = element("option", value);
    option.value = value;
    options.push(option);
  }
  select.replaceChildren(...options);
  select.value = values.includes(chosen) ? chosen : "";
}

function fillChoices() {
  fill($("document"), report.receipts.map((r) => r.doc_id), "All documents");
  fill($("partner"), report.receipts.map((r) => r.partner), "All partners");
  if (me.admin) fill($("owner"), report.owners.map((o) => o.owner), "All owners");
}

function shown() {
  const doc = $("document").value;
  const partner = $("partner").value;
  return report.receipts.filter((r) => (!doc || r.doc_id === doc)
    && (!partner || r.partner === partner));
}

function showNothing() {
  $("timeline").hidden = true;
  $("receipts-section").hidden = true;
}

function render() {
  const rows = shown();
  const filtered = Boolean($("from").value || $("to").value);
  if (!report.receipts.length) {
    showNothing();
    if (!me.admin && report.documents === 0) {
      $("filters").hidden = true;
      setStatus(report.owner + " owns no documents in this index, so there is nothing to show "
        + "here yet. A document gets an owner in the host's access.yaml (owner:); if some of "
        + "yours should be listed, ask the service's administrators.", "empty");
    } else {
      const whose = me.admin ? "any owner's documents" : "your " + report.documents
        + (report.documents === 1 ? " document" : " documents");
      setStatus("No partner has received passages of " + whose + (filtered ? " in this period"
        : " yet") + ".", "empty");
    }
    return;
  }
  if (!rows.length) {
    showNothing();
    setStatus("Nothing matches these filters.", "empty");
    return;
  }
  const days = new Map();
  for (const row of rows) {
    for (const { day, count } of row.days) days.set(day, (days.get(day) || 0) + count);
  }
  $("timeline").hidden = false; // shown first: the chart takes the width it is given
  $("receipts-section").hidden = false;
  drawDays($("chart"), days, "Receipts");
  $("receipts").tBodies[0].replaceChildren(...rows.map(tableRow));
  const times = rows.reduce((n, r) => n + r.count, 0);
  const docs = new Set(rows.map((r) => r.doc_id)).size;
  const partners = new Set(rows.map((r) => r.partner)).size;
  setStatus(`${docs} ${docs === 1 ? "document" : "documents"} received ${times} `
    + `${times === 1 ? "time" : "times"} by ${partners} ${partners === 1 ? "partner" : "partners"}`
    + (filtered ? " in this period." : "."));
}

function cell(label, text, className) {
  const td = element("td", text, className);
  td.dataset.label = label;
  return td;
}

function tableRow(r) {
  const tr = document.createElement("tr");
  tr.append(cell("Owner", r.owner, "owner-col"), cell("Document", r.doc_id, "path"),
    cell("Received by", r.partner), cell("As", KINDS[r.kind] || r.kind),
    cell("Times", r.count, "num"), cell("First", utcMinute(r.first)),
    cell("Last", utcMinute(r.last)));
  return tr;
}

// One CSV field (RFC 4180); a leading = + - @ is quoted away so a spreadsheet never runs it.
function csvField(value) {
  let text = String(value);
  if (/^[=+\-@\t\r]/.test(text)) text = "'" + text;
  return /[",\r\n]/.test(text) ? '"' + text.replace(/"/g, '""') + '"' : text;
}

function downloadCsv() {
  const header = ["owner", "document", "received_by", "as", "times", "first", "last"];
  const rows = shown().map((r) => [r.owner, r.doc_id, r.partner, r.kind, r.count, r.first,
    r.last]);
  const columns = me.admin ? 0 : 1; // an owner's own page has no owner column
  const lines = [header, ...rows].map((fields) => fields.slice(columns).map(csvField).join(","));
  const blob = new Blob([lines.join("\r\n") + "\r\n"], { type: "text/csv;charset=utf-8" });
  const url = URL.createObjectURL(blob);
  const anchor = document.createElement("a");
  anchor.href = url;
  anchor.download = "receipts-" + (me.admin ? $("owner").value || "all-owners" : report.owner)
    + "-" + ($("from").value || "start") + "-to-" + ($("to").value || "now") + ".csv";
  document.body.append(anchor);
  anchor.click();
  anchor.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

document.addEventListener("DOMContentLoaded", () => {
  for (const id of ["from", "to", "owner"]) $(id).addEventListener("change", load);
  for (const id of ["document", "partner"]) $(id).addEventListener("change", render);
  $("filters").addEventListener("submit", (event) => event.preventDefault());
  $("csv").addEventListener("click", downloadCsv);
  start();
});
