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
    return { status: response.status, ok: response.ok, data: data, message: message,
      retryAfter: response.headers.get("Retry-After") };
  } catch (error) {
    return { status: 0, ok: false, data: null, message: "", retryAfter: null };
  }
}

// The key form, made once per page just before #status: every page asks the same way.
function keyForm(label) {
  if ($("key-form")) return $("key-form");
  const form = element("form");
  form.id = "key-form";
  form.hidden = true;
  form.setAttribute("aria-labelledby", "key-title");
  const title = element("h2", "API key");
  title.id = "key-title";
  const reason = element("p", "", "notice");
  reason.id = "key-reason";
  const caption = element("label", label);
  caption.htmlFor = "key";
  const input = document.createElement("input");
  Object.assign(input, { id: "key", name: "key", type: "password", autocomplete: "off",
    spellcheck: false, required: true });
  const button = element("button", "Use this key");
  button.type = "submit";
  const row = element("div", null, "row");
  row.append(input, button);
  form.append(title, reason, caption, row);
  $("status").before(form);
  return form;
}

// Shown when the API answers 401 (or 403 where another key may do); on submit the key is kept
// for the tab and `onKey` runs. `label` says which key the page needs.
export function askForKey(reason, onKey, label) {
  forgetKey();
  const form = keyForm(label || "Your API key (kept in this tab only, until you close it)");
  $("key-reason").textContent = reason;
  form.hidden = false;
  setStatus(reason, "error");
  $("key").value = "";
  $("key").focus();
  form.onsubmit = (event) => {
    event.preventDefault();
    const key = $("key").value.trim();
    if (!key) return;
    rememberKey(key);
    form.hidden = true;
    onKey();
  };
}

// The page header's links (#nav) that the caller may follow: search; its documents' receipts
// when its partner owns documents (every owner's for an admin); the builds for an admin.
export async function showLinks(me) {
  const who = me || (await callApi("/v1/me")).data;
  const nav = $("nav");
  if (!nav || !who || typeof who.admin !== "boolean") return who;
  const links = [["/", "search", "Search", true],
    ["/owned", "owned", who.admin ? "Documents of all owners" : "Your documents",
      who.admin || who.owned_documents > 0],
    ["/builds", "builds", "Builds", who.admin]];
  nav.replaceChildren(...links.filter(([href, , , allowed]) => allowed
    || href === location.pathname).map(([href, name, text]) => {
    const link = element("a", text);
    link.href = href;
    link.id = "nav-" + name;
    if (href === location.pathname) link.setAttribute("aria-current", "page");
    return link;
  }));
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
