// "Builds", for admins: the kept generations with their reports and the recorded runs
// (GET /v1/admin/builds), and the rollback (POST /v1/admin/builds/rollback) after a
// confirmation in a modal dialog.
"use strict";

import {
  $, apiKey, askForKey, callApi, element, setStatus, showLinks, utcMinute,
} from "./session.js";

let state = null; // the API's last answer
let target = null; // the generation the dialog asks about

const number = (n) => (n === null || n === undefined ? "?" : Number(n).toLocaleString("en"));

async function load(done) {
  const answer = await callApi("/v1/admin/builds");
  if (answer.status === 401 || answer.status === 403) {
    hideAll();
    askForKey(answer.status === 403 ? "This page needs an admin key (" + answer.message
      + "). Enter an admin key." : apiKey() ? "Key refused: this API key is unknown or has "
      + "been revoked. Enter another key." : "Enter an admin API key to see the builds.", load,
    "An admin API key (kept in this tab only, until you close it)");
    return;
  }
  if (!answer.ok || !answer.data) {
    hideAll();
    setStatus(answer.status === 0 ? "The service cannot be reached. Check the network and "
      + "try again." : "The service had a problem (HTTP " + answer.status + "). "
      + answer.message, "error");
    return;
  }
  state = answer.data;
  showLinks();
  render();
  setStatus(done || state.builds.length + " kept " + (state.builds.length === 1 ? "generation"
    : "generations") + "; live: " + (state.live || "none") + ".");
}

function hideAll() {
  for (const id of ["last-run", "generations-section", "runs-section"]) $(id).hidden = true;
}

function render() {
  renderLastRun(state.runs[0]);
  $("generations").replaceChildren(...state.builds.map(card));
  $("generations-section").hidden = false;
  $("runs").tBodies[0].replaceChildren(...state.runs.map(runRow));
  $("runs-section").hidden = !state.runs.length;
}

// Nothing published: failed (1), a configuration error (2), or killed before it ended (137).
function failed(run) {
  return run.exit_code === 1 || run.exit_code === 2 || run.exit_code === 137;
}

function renderLastRun(run) {
  const banner = $("last-run");
  banner.hidden = !run;
  if (!run) return;
  banner.className = "banner " + (run.exit_code === 0 ? "good" : failed(run) ? "bad" : "warn");
  banner.textContent = "Last build run: " + utcMinute(run.finished_at) + ", exit code "
    + run.exit_code + " (" + run.outcome + ")" + (run.error ? ": " + run.error : ".");
}

function figure(term, text) {
  const item = document.createElement("div");
  item.append(element("dt", term), element("dd", text));
  return item;
}

function notes(title, items, reasonless) {
  const details = document.createElement("details");
  details.append(element("summary", items.length + " " + title));
  const list = document.createElement("ul");
  for (const item of items) {
    const line = element("li");
    line.append(element("span", item.path, "path"), reasonless ? "" : ": " + item.reason);
    list.append(line);
  }
  details.append(list);
  return details;
}

function card(build, position) {
  const item = element("li", null, "card" + (build.live ? " live" : ""));
  const heading = element("h3");
  heading.id = "generation-" + position;
  heading.tabIndex = -1;
  heading.append(element("span", build.generation, "name"), " ",
    element("span", build.live ? "Live" : "Kept", build.live ? "badge live" : "badge"));
  item.append(heading, element("p", "Finished " + utcMinute(build.finished_at)
    + (build.seconds === null ? "" : " · took " + build.seconds.toFixed(1) + " s"), "meta"));
  const figures = element("dl", null, "figures");
  figures.append(
    figure("Documents", number(build.documents) + " (added " + number(build.added)
      + ", changed " + number(build.changed) + ", unchanged " + number(build.unchanged)
      + ", deleted " + number(build.deleted) + ")"),
    figure("Files", number(build.files_parsed) + " parsed, " + number(build.files_carried)
      + " carried over unread, " + build.skipped.length + " skipped, "
      + build.kept_previous.length + " kept in their previous version"),
    figure("Chunks", number(build.chunks) + ": " + number(build.embedded) + " embedded, "
      + number(build.reused) + " reused"));
  item.append(figures);
  if (build.skipped.length) item.append(notes("skipped", build.skipped));
  if (build.kept_previous.length) {
    item.append(notes("kept in their previous version", build.kept_previous));
  }
  if (build.warnings.length) item.append(notes("warnings", build.warnings));
  if (!build.live) {
    const button = element("button", "Make live", "make-live");
    button.type = "button";
    button.dataset.generation = build.generation;
    button.setAttribute("aria-label", "Make generation " + build.generation + " live");
    item.append(button);
  } else if (state.serving !== build.generation) {
    item.append(element("p", "This server still answers from " + state.serving + "; it follows "
      + "within PKS_RELOAD_SECONDS.", "hint"));
  }
  return item;
}

function runRow(run) {
  const tr = document.createElement("tr");
  tr.className = failed(run) ? "bad" : "";
  const cells = [["Finished", utcMinute(run.finished_at)], ["Seconds", run.seconds.toFixed(1)],
    ["Exit", run.exit_code], ["Outcome", run.outcome + (run.error ? ": " + run.error : "")],
    ["Generation", run.generation || "none published"]];
  for (const [label, text] of cells) {
    const td = element("td", text, label === "Seconds" || label === "Exit" ? "num" : "");
    td.dataset.label = label;
    tr.append(td);
  }
  return tr;
}

function askRollback(button) {
  target = state.builds.find((b) => b.generation === button.dataset.generation);
  if (!target) return;
  $("confirm-text").textContent = "Searches will answer from generation " + target.generation
    + " (finished " + utcMinute(target.finished_at) + ", " + number(target.documents)
    + " documents) instead of " + (state.live || "none") + ". This does what `python -m indexer "
    + "rollback --to " + target.generation + "` does, under the same lock, and is recorded in "
    + "the audit.";
  $("confirm").returnValue = "";
  $("confirm").showModal();
}

async function onConfirmClosed() {
  const button = document.querySelector(`button[data-generation="${target.generation}"]`);
  if ($("confirm").returnValue !== "ok") {
    if (button) button.focus();
    return;
  }
  setStatus("Switching to " + target.generation + "…");
  const answer = await callApi("/v1/admin/builds/rollback", {
    method: "POST", body: JSON.stringify({ to: target.generation }),
  });
  if (answer.status === 401 || answer.status === 403) {
    askForKey("Key refused: enter an admin key again.", load);
    return;
  }
  if (!answer.ok) {
    setStatus("The rollback was refused: " + (answer.message || "HTTP " + answer.status),
      "error");
    return;
  }
  await load("Generation " + answer.data.live + " is live now (was "
    + (answer.data.before || "none") + ").");
  const live = document.querySelector(".card.live h3");
  if (live) live.focus();
}

document.addEventListener("DOMContentLoaded", () => {
  $("generations").addEventListener("click", (event) => {
    const button = event.target.closest("button.make-live");
    if (button) askRollback(button);
  });
  $("confirm").addEventListener("close", onConfirmClosed);
  load();
});
