// What every page shares: the API key of this tab, calls to the public API with it, the key
// form, and the links a key may follow (GET /v1/me). No framework, no build step.
"use strict";

const KEY_STORE = "pks.apiKey"; // sessionStorage: this tab only, gone when it closes

export const $ = (id) => document.getElementById(id);

export function apiKey() {
  return sessionStorage.getItem(KEY_STORE);
}

export function authHeaders(extra) {
  const headers = Object.assign({}, extra);
  const key = apiKey();
  if (key) headers.Authorization = "Bearer " + key;
  return headers;
}

export function rememberKey(key) {
  sessionStorage.setItem(KEY_STORE, key);
}

export function forgetKey() {
  sessionStorage.removeItem(KEY_STORE);
}

export function setStatus(text, kind) {
  const status = $("status");
  status.textContent = text;
  status.className = kind || "";
}

// GET or POST JSON with the key. Never throws: {status: 0} when the service cannot be reached.
export async function callApi(path, options) {
  const init = Object.assign({}, options);
  init.headers = authHeaders(init.body ? { "Content-Type": "application/json" } : {});
  try {
    const response = await fetch(path, init);
    const data = await response.json().catch(() => null);
    const message = data && data.error ? data.error.message : "";
    return { status: response.status, ok: response.ok, data: data, message: message };
  } catch (error) {
    return { status: 0, ok: false, data: null, message: "" };
  }
}

// The key form (#key-form, #key, #key-reason): shown when the API answers 401 or 403; on
// submit the key is kept for the tab and `onKey` runs again.
export function askForKey(reason, onKey) {
  forgetKey();
  $("key-reason").textContent = reason;
  $("key-form").hidden = false;
  setStatus(reason, "error");
  $("key").value = "";
  $("key").focus();
  $("key-form").onsubmit = (event) => {
    event.preventDefault();
    const key = $("key").value.trim();
    if (!key) return;
    rememberKey(key);
    $("key-form").hidden = true;
    onKey();
  };
}

// Shows the links of the page header (#nav) that the caller may follow: its documents' receipts
// when its partner owns documents, every owner's receipts and the builds for an admin.
export async function showLinks(me) {
  const who = me || (await callApi("/v1/me")).data;
  const nav = $("nav");
  if (!nav || !who || typeof who.admin !== "boolean") return who;
  $("nav-owned").hidden = !(who.admin || who.owned_documents > 0);
  $("nav-owned").textContent = who.admin ? "Documents of all owners" : "Your documents";
  $("nav-builds").hidden = !who.admin;
  nav.hidden = false;
  return who;
}

// "2026-11-25T10:00:03.104512Z" -> "2026-11-25 10:00 UTC"
export function utcMinute(iso) {
  return iso ? iso.slice(0, 10) + " " + iso.slice(11, 16) + " UTC" : "";
}

export function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}
