// The search page: calls the public API (POST /v1/search, GET /v1/documents/...) like any
// client. No framework, no build step. Passage text is only ever put in the page as text nodes.
"use strict";

import {
  $, apiKey, askForKey, authHeaders, callApi, forgetKey, setStatus, showLinks,
} from "./session.js";

const TOP_K = 20;
const INLINE_TYPES = new Set(["application/pdf", "text/plain", "text/markdown", "text/csv",
  "image/png", "image/jpeg", "image/gif", "image/webp"]);
const STOP = new Set(["the", "and", "for", "with", "what", "which", "who", "how", "did", "does",
  "was", "were", "are", "from", "that", "this", "into", "its", "their", "they", "when", "where",
  "why", "will", "would", "can", "could", "much", "many", "about", "after", "before", "than"]);

function clearResults() {
  $("result-list").replaceChildren();
}

// ---- key (no SSO proxy in front): asked once, kept for the tab ----------------------------

function needKey(reason, query) {
  clearResults();
  $("forget").hidden = true;
  askForKey(reason, () => {
    $("forget").hidden = false;
    showLinks();
    const next = query || $("q").value.trim();
    if (next) runSearch(next);
    else $("q").focus();
  });
}

function onForget() {
  forgetKey();
  $("nav").hidden = true;
  $("forget").hidden = true;
  clearResults();
  setStatus("The key is forgotten in this tab.");
  $("q").focus();
}

// ---- mode switch: shown only when the API's own schema offers modes -------------------------

function enumOf(spec, schema, depth) {
  if (!schema || depth > 5) return null;
  if (Array.isArray(schema.enum)) return schema.enum;
  if (typeof schema.$ref === "string") {
    const target = schema.$ref.replace(/^#\//, "").split("/")
      .reduce((node, part) => (node ? node[part] : null), spec);
    return enumOf(spec, target, depth + 1);
  }
  for (const list of [schema.anyOf, schema.oneOf, schema.allOf]) {
    for (const item of list || []) {
      const found = enumOf(spec, item, depth + 1);
      if (found) return found;
    }
  }
  return null;
}

async function loadModes() {
  let spec;
  try {
    spec = await (await fetch("/openapi.json")).json();
  } catch (error) {
    return; // no schema: search without a mode, as before
  }
  const request = ((spec.components || {}).schemas || {}).SearchRequest || {};
  const mode = (request.properties || {}).mode;
  const values = enumOf(spec, mode, 0);
  if (!values || values.length < 2) return;
  const choices = $("mode-choices");
  values.forEach((value) => {
    const label = document.createElement("label");
    const input = document.createElement("input");
    input.type = "radio";
    input.name = "mode";
    input.value = value;
    input.checked = value === (mode.default || values[0]);
    label.append(input, " " + value);
    choices.append(label);
  });
  $("modes").hidden = false;
}

function selectedMode() {
  if ($("modes").hidden) return null;
  const checked = document.querySelector("input[name=mode]:checked");
  return checked ? checked.value : null;
}

// ---- search --------------------------------------------------------------------------------

function folderGlobs() {
  return $("within").value.split(/[\s,]+/).filter(Boolean)
    .map((glob) => (glob.endsWith("/") ? glob + "**" : glob));
}

async function runSearch(query) {
  const body = { query: query, top_k: TOP_K };
  const within = folderGlobs();
  if (within.length) body.within = within;
  const mode = selectedMode();
  if (mode) body.mode = mode;
  $("results").setAttribute("aria-busy", "true");
  setStatus("Searching…");
  const answer = await callApi("/v1/search", { method: "POST", body: JSON.stringify(body) });
  const data = answer.data;
  const message = answer.message;
  $("results").setAttribute("aria-busy", "false");
  if (answer.status === 0) {
    clearResults();
    setStatus("The search service cannot be reached. Check the network and try again.", "error");
    return;
  }
  if (answer.status === 401) {
    needKey(apiKey()
      ? "Key refused: this API key is unknown or has been revoked. Enter another key."
      : "Enter your API key to search.", query);
    return;
  }
  clearResults();
  if (answer.status === 422) {
    setStatus("The search could not be run: " + message, "error");
  } else if (answer.status === 429) {
    const wait = answer.retryAfter;
    setStatus("Too many searches at once." + (wait ? " Try again in " + wait + " s." : ""),
      "error");
  } else if (!answer.ok || !data || !Array.isArray(data.results)) {
    setStatus("The search service had a problem (HTTP " + answer.status + "). Try again in a "
      + "moment; if it persists, tell the service's administrators." + (message ? " " + message
      : ""), "error");
  } else if (data.results.length === 0) {
    setStatus("No results for “" + query + "” in the documents you may see"
      + (within.length ? " in those folders" : "") + ". Try other words"
      + (within.length ? " or clear the folder filter." : "."), "empty");
  } else {
    render(data.results, query);
    const n = data.results.length;
    setStatus(n + (n === 1 ? " result" : " results") + " for “" + query + "”.");
  }
}

function onSearchSubmit(event) {
  event.preventDefault();
  const query = $("q").value.trim();
  if (query) runSearch(query);
}

// ---- results -------------------------------------------------------------------------------

// Words are compared folded, as the index compares them (indexer/store/folding.py): lower
// case, accents dropped (NFKD), ß as ss, ligatures and the letters Unicode does not decompose
// spelled out. So "Geneve depot" marks "Genève dépôt", and the reverse.
const LETTERS = { "ß": "ss", "œ": "oe", "æ": "ae", "ø": "o", "ł": "l", "đ": "d", "ħ": "h",
  "ı": "i", "ŧ": "t", "ŀ": "l" };
const ACCENT = /[\u0300-\u036f]/;

function foldChar(ch) {
  let out = "";
  for (const c of ch.toLowerCase().normalize("NFKD")) {
    if (!ACCENT.test(c)) out += LETTERS[c] || c;
  }
  return out;
}

// The text folded, and for each of its UTF-16 units where in `text` it came from.
function folded(text) {
  let out = "";
  const from = [];
  const to = [];
  let at = 0;
  for (const ch of text) {
    const f = foldChar(ch);
    for (let k = 0; k < f.length; k += 1) {
      from.push(at);
      to.push(at + ch.length);
    }
    out += f;
    at += ch.length;
  }
  return { text: out, from: from, to: to };
}

function queryWords(query) {
  const words = folded(query).text
    .match(/[\p{L}\p{N}][\p{L}\p{N}.-]*[\p{L}\p{N}]|[\p{N}]/gu) || [];
  return [...new Set(words)].filter((w) => (w.length > 2 || /\d/.test(w)) && !STOP.has(w));
}

function escapeRegExp(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

// Appends `text` to `element` with the query's (folded) words in <mark>: text nodes only,
// never HTML. Matching runs on the folded text; each mark covers the original characters.
function appendHighlighted(element, text, words) {
  if (!words.length) {
    element.append(text);
    return;
  }
  const alternatives = words.map(escapeRegExp).sort((a, b) => b.length - a.length).join("|");
  const pattern = new RegExp("(?<![\\p{L}\\p{N}])(?:" + alternatives + ")", "gu");
  const fold = folded(text);
  let last = 0;
  for (const match of fold.text.matchAll(pattern)) {
    const end = match.index + match[0].length;
    const start = fold.from[match.index];
    // through the last matched character, and any accents after it that folded to nothing
    const stop = end < fold.from.length ? Math.max(fold.to[end - 1], fold.from[end])
      : text.length;
    if (start < last) continue;
    element.append(text.slice(last, start));
    const mark = document.createElement("mark");
    mark.textContent = text.slice(start, stop);
    element.append(mark);
    last = stop;
  }
  element.append(text.slice(last));
}

function documentUrl(docId) {
  return "/v1/documents/" + docId.split("/").map(encodeURIComponent).join("/");
}

function span(className, text) {
  const element = document.createElement("span");
  element.className = className;
  element.textContent = text;
  return element;
}

function render(results, query) {
  const words = queryWords(query);
  const list = $("result-list");
  results.forEach((result, position) => {
    const item = document.createElement("li");
    item.className = "result";
    const heading = document.createElement("h2");
    const link = document.createElement("a");
    link.className = "doc-link";
    link.href = documentUrl(result.doc_id) + (result.page ? "#page=" + result.page : "");
    link.dataset.doc = result.doc_id;
    link.dataset.title = result.title;
    if (result.page) link.dataset.page = String(result.page);
    link.id = "result-" + position;
    link.textContent = result.title;
    heading.append(link);

    const meta = document.createElement("p");
    meta.className = "meta";
    meta.append(span("path", result.path));
    if (result.page) {
      const range = Array.isArray(result.pages) ? " (pages " + result.pages[0] + "–"
        + result.pages[1] + ")" : "";
      meta.append(span("page", "page " + result.page + range));
    }
    if (result.section) meta.append(span("section", result.section));
    if (result.ocr) {
      const ocr = span("ocr", "OCR text");
      ocr.title = "Recognised from a scanned image: may contain recognition errors";
      meta.append(ocr);
    }
    meta.append(span("score", "score " + Number(result.score).toFixed(3)));

    const passage = document.createElement("p");
    passage.className = "passage";
    appendHighlighted(passage, result.text, words);
    item.append(heading, meta, passage);

    if (Array.isArray(result.visible_to)) { // only admin keys receive this field
      const rights = document.createElement("p");
      rights.className = "rights";
      rights.textContent = "Visible to: " + (result.visible_to.length
        ? result.visible_to.join(", ") : "no partner (admins only)");
      item.append(rights);
    }
    list.append(item);
  });
}

// ---- documents: fetched with the key, shown from a blob (the key never goes in a URL) ------

function showDocumentError(status, message) {
  const text = status === 404
    ? "That document is no longer visible to you."
    : status === 410 ? "That document cannot be opened: " + message
      : "The document could not be opened (HTTP " + status + ")." + (message ? " " + message : "");
  setStatus(text, "error");
}

async function openDocument(link) {
  // Open the tab now, while the click still counts as the person's, then fill it.
  const tab = window.open("", "_blank");
  if (tab) tab.document.title = "Opening " + link.dataset.title + "…";
  let response;
  try {
    response = await fetch(documentUrl(link.dataset.doc), { headers: authHeaders() });
  } catch (error) {
    if (tab) tab.close();
    setStatus("The document service cannot be reached.", "error");
    return;
  }
  if (!response.ok) {
    if (tab) tab.close();
    const data = await response.json().catch(() => null);
    if (response.status === 401) {
      needKey("Key refused: enter your API key again.", null);
      return;
    }
    showDocumentError(response.status, data && data.error ? data.error.message : "");
    return;
  }
  const type = (response.headers.get("Content-Type") || "").split(";")[0].trim().toLowerCase();
  const blob = await response.blob();
  const name = link.dataset.doc.split("/").pop();
  if (INLINE_TYPES.has(type) && tab) {
    // Text of any kind is shown as plain text: a document never runs script in this origin.
    const shown = type.startsWith("text/") ? "text/plain;charset=utf-8" : type;
    const url = URL.createObjectURL(new Blob([blob], { type: shown }));
    tab.opener = null;
    tab.location.href = url + (link.dataset.page ? "#page=" + link.dataset.page : "");
    setTimeout(() => URL.revokeObjectURL(url), 120000);
  } else {
    if (tab) tab.close();
    const url = URL.createObjectURL(new Blob([blob], { type: "application/octet-stream" }));
    const anchor = document.createElement("a");
    anchor.href = url;
    anchor.download = name;
    document.body.append(anchor);
    anchor.click();
    anchor.remove();
    setTimeout(() => URL.revokeObjectURL(url), 120000);
    setStatus("Downloaded " + name + ".");
  }
}

// ---- keyboard: arrows move between results, Enter opens one --------------------------------

function resultLinks() {
  return Array.from(document.querySelectorAll("#result-list a.doc-link"));
}

function onKeyDown(event) {
  const links = resultLinks();
  if (!links.length || event.altKey || event.ctrlKey || event.metaKey) return;
  const at = links.indexOf(document.activeElement);
  const inBox = document.activeElement === $("q");
  let next = null;
  if (event.key === "ArrowDown") next = inBox ? 0 : at >= 0 ? Math.min(at + 1, links.length - 1)
    : null;
  else if (event.key === "ArrowUp" && at >= 0) next = at - 1;
  else if (event.key === "Home" && at >= 0) next = 0;
  else if (event.key === "End" && at >= 0) next = links.length - 1;
  else return;
  if (next === null) return;
  event.preventDefault();
  if (next < 0) $("q").focus();
  else {
    links[next].focus();
    links[next].scrollIntoView({ block: "nearest" });
  }
}

function onResultClick(event) {
  const link = event.target.closest("a.doc-link");
  if (!link || event.ctrlKey || event.metaKey || event.shiftKey) return;
  event.preventDefault();
  openDocument(link);
}

document.addEventListener("DOMContentLoaded", () => {
  $("search").addEventListener("submit", onSearchSubmit);
  $("forget").addEventListener("click", onForget);
  $("result-list").addEventListener("click", onResultClick);
  document.addEventListener("keydown", onKeyDown);
  $("forget").hidden = !apiKey();
  loadModes();
  showLinks();
  $("q").focus();
});
