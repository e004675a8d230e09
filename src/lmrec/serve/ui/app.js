// lmrec /ui: pick a user or start as a new visitor, search the catalog, like items and
// watch the recommendations change. Plain JavaScript, no build step, no third-party code.
// The API key is typed into the page, kept in sessionStorage (this tab only) and sent as an
// Authorization header: never in a URL.
"use strict";

const state = {
  key: sessionStorage.getItem("lmrec-key") || "",
  user: null,        // a known user id, or null for a new visitor
  visitor: false,    // true once "new visitor" is chosen
  liked: [],         // item ids liked in this page
  titles: new Map(), // item id -> title
  shown: new Set(),  // item ids of the last recommendation list (to mark new ones)
};

const $ = (id) => document.getElementById(id);

function showError(message) {
  $("error").textContent = message || "";
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (state.key) headers.Authorization = "Bearer " + state.key;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = { detail: text }; }
  if (!response.ok) {
    const detail = data && data.detail ? data.detail : response.statusText;
    throw new Error(`${response.status}: ${detail}`);
  }
  return data;
}

async function titlesFor(ids) {
  const missing = ids.filter((id) => !state.titles.has(id));
  if (missing.length) {
    const data = await api("POST", "/v1/ui/titles", { items: missing });
    for (const [id, title] of Object.entries(data.titles)) state.titles.set(id, title);
  }
  return ids.map((id) => state.titles.get(id) || id);
}

function itemRow(id, title, parts) {
  const li = document.createElement("li");
  li.dataset.item = id;
  const name = document.createElement("span");
  name.className = "title";
  name.textContent = title;
  li.appendChild(name);
  for (const part of parts) li.appendChild(part);
  return li;
}

function meta(text) {
  const span = document.createElement("span");
  span.className = "meta";
  span.textContent = " " + text;
  return span;
}

function button(label, onClick, secondary) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  if (secondary) b.className = "secondary";
  b.addEventListener("click", () => onClick().catch((e) => showError(e.message)));
  return b;
}

function active() {
  return state.user !== null || state.visitor;
}

function target() {
  return state.user !== null ? { user: state.user } : { items: state.liked };
}

async function refreshRecommendations() {
  const list = $("recommendations");
  if (!active()) return;
  if (state.user === null && state.liked.length === 0) {
    list.replaceChildren();
    $("recs-note").textContent = "(like a few items to get recommendations)";
    return;
  }
  const data = await api("POST", "/v1/recommend", { ...target(), k: 10 });
  const titles = await titlesFor(data.items);
  const rows = [];
  for (let i = 0; i < data.items.length; i += 1) {
    const id = data.items[i];
    const why = document.createElement("span");
    why.className = "why";
    const li = itemRow(id, titles[i], [
      meta(`score ${data.scores[i].toFixed(3)}`),
      button("like", () => like(id)),
      button("similar", () => showSimilar(id), true),
      why,
    ]);
    if (state.shown.size && !state.shown.has(id)) li.classList.add("new");
    rows.push(li);
  }
  list.replaceChildren(...rows);
  state.shown = new Set(data.items);
  $("recs-note").textContent = `(${data.strategy}${data.fallback ? ", fallback" : ""})`;
  await Promise.all(data.items.map((id, i) => explain(id, rows[i].querySelector(".why"))));
}

async function explain(item, node) {
  try {
    const data = await api("POST", "/v1/explain", { ...target(), item, n: 2 });
    node.textContent = data.explanation.join(" ");
  } catch (e) {
    node.textContent = "";
  }
}

async function showSimilar(item) {
  const data = await api("GET", `/v1/items/${encodeURIComponent(item)}/similar?k=8`);
  const [title] = await titlesFor([item]);
  $("similar-title").textContent = title;
  const titles = await titlesFor(data.items);
  $("similar-items").replaceChildren(
    ...data.items.map((id, i) => itemRow(id, titles[i], [meta(`score ${data.scores[i].toFixed(3)}`),
      button("like", () => like(id))]))
  );
}

async function like(item) {
  if (!active()) {
    showError("Pick a user or start as a new visitor first.");
    return;
  }
  if (state.liked.includes(item)) return;
  if (state.user !== null) {
    const key = `ui-${state.user}-${item}-${Date.now()}`;
    await api("POST", "/v1/feedback", {
      events: [{ user: state.user, item, type: "like", weight: 1.0, idempotency_key: key }],
    });
  }
  state.liked.push(item);
  const titles = await titlesFor(state.liked);
  $("liked").replaceChildren(...titles.map((t) => {
    const li = document.createElement("li");
    li.textContent = t;
    return li;
  }));
  showError("");
  await refreshRecommendations();
}

async function search(query) {
  const data = await api("GET", `/v1/ui/search?q=${encodeURIComponent(query)}&limit=15`);
  for (const hit of data.items) state.titles.set(hit.item, hit.title);
  $("results").replaceChildren(
    ...data.items.map((hit) => itemRow(hit.item, hit.title, [button("like", () => like(hit.item)),
      button("similar", () => showSimilar(hit.item), true)]))
  );
  if (!data.items.length) $("results").replaceChildren(itemRow("", "no match", []));
}

async function start() {
  $("api-key").value = state.key;
  $("key-state").textContent = state.key ? "key set for this tab" : "";
  try {
    const info = await api("GET", "/v1/models");
    const current = info.models.find((m) => m.current) || info.models[0];
    $("model-info").textContent = `${current.name} · ${current.n_items} items · ${current.n_users} users`;
    const users = await api("GET", "/v1/ui/users?limit=50");
    $("user-list").replaceChildren(...users.users.map((u) => {
      const option = document.createElement("option");
      option.value = u;
      return option;
    }));
    showError("");
  } catch (e) {
    showError(e.message + (e.message.startsWith("401") ? " (enter an API key above)" : ""));
  }
}

function reset(who) {
  state.liked = [];
  state.shown = new Set();
  $("liked").replaceChildren();
  $("who-state").textContent = who;
}

$("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  state.key = $("api-key").value.trim();
  sessionStorage.setItem("lmrec-key", state.key);
  start();
});
$("user-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const user = $("user-id").value.trim();
  if (!user) return;
  state.user = user;
  state.visitor = false;
  reset(`Browsing as user ${user}.`);
  refreshRecommendations().catch((e) => showError(e.message));
});
$("visitor").addEventListener("click", () => {
  state.user = null;
  state.visitor = true;
  reset("Browsing as a new visitor: like a few items.");
  refreshRecommendations().catch((e) => showError(e.message));
});
$("search-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const query = $("query").value.trim();
  if (query) search(query).catch((e) => showError(e.message));
});
start();
