#include "web_page.h"

namespace mtrec::detail {

// Everything inline: the page must work on a machine without internet access. Text reaches the
// document only through textContent, so titles from user files cannot inject markup. The first
// sample user's recommendations are requested on load, so the page shows results at once (and
// a headless browser test can read them).
std::string_view web_page_html() {
  static constexpr std::string_view page = R"HTML(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mtrec recommender</title>
<style>
  :root { --fg:#1d2330; --muted:#667085; --line:#e4e7ec; --accent:#2e5bda; --bg:#f7f8fa; }
  * { box-sizing: border-box; }
  body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:var(--fg); background:var(--bg); }
  header { padding:14px 24px; background:#fff; border-bottom:1px solid var(--line); display:flex; gap:16px; align-items:baseline; flex-wrap:wrap; }
  header h1 { font-size:18px; margin:0; }
  header .meta { color:var(--muted); font-size:12px; }
  main { display:grid; grid-template-columns: 330px 1fr; gap:20px; padding:20px 24px; }
  form, section { background:#fff; border:1px solid var(--line); border-radius:8px; padding:16px; }
  label { display:block; font-weight:600; margin:10px 0 4px; }
  label small { font-weight:400; color:var(--muted); }
  input, select, textarea { width:100%; padding:6px 8px; border:1px solid #cfd4dc; border-radius:6px; font:inherit; }
  textarea { height:56px; resize:vertical; }
  .row { display:flex; gap:8px; } .row > * { flex:1; }
  button { margin-top:14px; width:100%; padding:8px; border:0; border-radius:6px; background:var(--accent); color:#fff; font-weight:600; cursor:pointer; }
  button:disabled { opacity:.6; }
  table { width:100%; border-collapse:collapse; }
  th, td { text-align:left; padding:7px 8px; border-bottom:1px solid var(--line); vertical-align:top; }
  th { font-size:12px; color:var(--muted); font-weight:600; }
  td.score { font-variant-numeric:tabular-nums; white-space:nowrap; }
  td.because { color:var(--muted); font-size:13px; }
  #summary { color:var(--muted); margin-bottom:10px; min-height:1.4em; }
  #error { color:#b42318; margin-top:10px; white-space:pre-wrap; }
  .hidden { display:none; }
  @media (max-width: 800px) { main { grid-template-columns: 1fr; } }
</style>
</head>
<body>
<header><h1>mtrec</h1><span class="meta" id="model">loading model information&hellip;</span></header>
<main>
<form id="form" autocomplete="off">
  <div id="token-box" class="hidden">
    <label for="token">Token <small>(this server needs a bearer token)</small></label>
    <input id="token" type="password" placeholder="token">
  </div>
  <label for="user">User <small>(pick or type an id; empty: anonymous)</small></label>
  <input id="user" list="users" placeholder="user id">
  <datalist id="users"></datalist>
  <label for="profile">Profile <small>(anonymous user: describe the tastes)</small></label>
  <textarea id="profile" placeholder="e.g. loves science fiction and space adventures"></textarea>
  <label for="recent">Recent items <small>(ids, comma-separated, oldest first)</small></label>
  <input id="recent" placeholder="e.g. 12, 7">
  <label for="scenario">Scenario</label>
  <select id="scenario"><option value="">(default, or from the context)</option></select>
  <label for="context">Context <small>(query or page text: picks the scenario)</small></label>
  <input id="context" placeholder="e.g. cheap flights">
  <div class="row">
    <div><label for="k">k</label><input id="k" type="number" min="1" max="100" value="10"></div>
    <div><label for="explain">Explain</label><input id="explain" type="number" min="0" max="10" value="2"></div>
  </div>
  <button id="go" type="submit">Recommend</button>
  <div id="error"></div>
</form>
<section>
  <div id="summary"></div>
  <table id="results" class="hidden">
    <thead><tr><th>#</th><th>Item</th><th>Title</th><th>Score</th><th>Because you liked</th></tr></thead>
    <tbody></tbody>
  </table>
</section>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);

function headers() {
  const h = { "Content-Type": "application/json" };
  const t = $("token").value.trim();
  if (t) h["Authorization"] = "Bearer " + t;
  return h;
}

function showError(text) { $("error").textContent = text || ""; }

async function call(method, path, body) {
  const r = await fetch(path, { method, headers: headers(), body: body === undefined ? undefined : JSON.stringify(body) });
  let data = null;
  try { data = await r.json(); } catch (e) { data = { error: "HTTP " + r.status }; }
  if (r.status === 401) $("token-box").classList.remove("hidden");
  if (!r.ok) {
    const err = new Error((data && data.error) || ("HTTP " + r.status));
    err.field = data && data.field;
    throw err;
  }
  return data;
}

async function loadInfo() {
  const info = await call("GET", "/info");
  if (info.token_required) $("token-box").classList.remove("hidden");
  $("model").textContent = info.users + " users, " + info.items + " items, scenarios: " +
    info.scenarios.join(", ") + " (default " + info.default_scenario + "), retrieval " + info.retrieval +
    ", model " + String(info.version).slice(0, 12);
  const list = $("users");
  list.replaceChildren();
  for (const u of info.sample_users || []) {
    const o = document.createElement("option");
    o.value = u;
    list.appendChild(o);
  }
  const sel = $("scenario");
  sel.replaceChildren(sel.options[0]);  // a reload (token given) must not repeat the list
  for (const s of info.scenarios) {
    const o = document.createElement("option");
    o.value = s;
    o.textContent = s;
    sel.appendChild(o);
  }
  if (!$("user").value && info.sample_users && info.sample_users.length) $("user").value = info.sample_users[0];
  return info;
}

function request() {
  const q = { k: parseInt($("k").value, 10) || 10, explain: parseInt($("explain").value, 10) || 0 };
  const user = $("user").value.trim(), profile = $("profile").value.trim(), context = $("context").value.trim();
  const recent = $("recent").value.split(",").map((s) => s.trim()).filter((s) => s.length);
  if (user) q.user = user;
  if (profile) q.profile = profile;
  if (recent.length) q.recent_items = recent;
  if ($("scenario").value) q.scenario = $("scenario").value;
  if (context) q.context = context;
  return q;
}

function cell(tr, cls, text) {
  const td = document.createElement("td");
  td.className = cls;
  td.textContent = text;
  tr.appendChild(td);
}

function render(q, res, ms) {
  const body = $("results").querySelector("tbody");
  body.replaceChildren();
  res.items.forEach((r, n) => {
    const tr = document.createElement("tr");
    tr.className = "rec";
    tr.dataset.item = r.item;
    cell(tr, "rank", String(n + 1));
    cell(tr, "item", r.item);
    cell(tr, "title", r.title);
    cell(tr, "score", r.score.toFixed(4));
    cell(tr, "because", r.because.map((b) => b.title + " (" + b.similarity.toFixed(2) + ")").join("; "));
    body.appendChild(tr);
  });
  $("results").classList.toggle("hidden", res.items.length === 0);
  $("results").dataset.user = q.user || "";
  $("results").dataset.scenario = res.scenario;
  $("summary").textContent = res.items.length + " recommendations for " + (q.user ? "user " + q.user : "an anonymous user") +
    " in scenario " + res.scenario + " (" + res.scenario_source +
    (res.scenario_source === "context" ? ", confidence " + res.scenario_confidence.toFixed(2) : "") +
    "), retrieval " + res.retrieval + ", " + ms.toFixed(0) + " ms";
}

async function recommend() {
  showError("");
  $("go").disabled = true;
  const q = request();
  const t0 = performance.now();
  try {
    const res = await call("POST", "/recommend", q);
    render(q, res, performance.now() - t0);
  } catch (e) {
    showError(e.message + (e.field ? "\n(field: " + e.field + ")" : ""));
  } finally {
    $("go").disabled = false;
  }
}

$("form").addEventListener("submit", (ev) => { ev.preventDefault(); recommend(); });
$("token").addEventListener("change", () => loadInfo().then(recommend).catch((e) => showError(e.message)));
loadInfo().then(recommend).catch((e) => showError(e.message));
</script>
</body>
</html>
)HTML";
  return page;
}

}  // namespace mtrec::detail
