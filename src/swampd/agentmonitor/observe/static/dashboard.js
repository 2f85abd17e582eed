// swampd dashboard: every run, live.  No framework, no build step, nothing from elsewhere.
//
// Data: GET /api/runs once, then a long-poll on GET /api/changes?since=VERSION that the daemon
// answers the moment a run changes (with only the runs that changed), or after ~25 s with none.
// Every value reaches the page through textContent, never as markup: a project named
// <script>alert(1)</script> is shown as those characters.
"use strict";

(function () {
  const runs = new Map();          // id -> row
  let version = -1;
  let clockOffset = 0;             // server time - browser time, seconds
  let scheduler = null;
  let sortKey = "launched_at", sortDir = -1;
  let selected = null;             // id of the run shown in the detail panel
  let firstRendered = false;

  const $ = (sel) => document.querySelector(sel);
  const el = (tag, text, cls) => {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  };
  const now = () => Date.now() / 1000 + clockOffset;

  function age(seconds) {
    if (!isFinite(seconds) || seconds < 0) seconds = 0;
    if (seconds < 60) return Math.floor(seconds) + "s";
    if (seconds < 3600) return Math.floor(seconds / 60) + "m " + Math.floor(seconds % 60) + "s";
    if (seconds < 86400) return Math.floor(seconds / 3600) + "h " + Math.floor((seconds % 3600) / 60) + "m";
    return Math.floor(seconds / 86400) + "d " + Math.floor((seconds % 86400) / 3600) + "h";
  }
  function when(ts) { return ts ? new Date(ts * 1000).toLocaleString() : ""; }

  // -- data -----------------------------------------------------------------------------
  async function getJSON(url) {
    const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
    if (response.status === 401) { window.location.assign("/login"); throw new Error("not logged in"); }
    if (!response.ok) throw new Error(url + ": HTTP " + response.status);
    return response.json();
  }

  function take(answer) {
    clockOffset = answer.now - Date.now() / 1000;
    if (answer.full) runs.clear();
    for (const row of answer.runs) runs.set(row.id, row);
    version = answer.version;
    scheduler = answer.scheduler;
    const cut = $("#truncated-banner");
    cut.hidden = !answer.truncated;
    cut.textContent = answer.truncated ? "Showing " + answer.runs.length + " of " + answer.total +
      " runs; the rest are not loaded." : "";
    render();
    if (selected !== null && answer.runs.some((r) => r.id === selected)) showDetail(selected);
  }

  async function live() {
    let delay = 1000;
    for (;;) {
      try {
        const url = version < 0 ? "/api/runs" : "/api/changes?since=" + version + "&timeout=25";
        take(await getJSON(url));
        setLive("live", "live");
        delay = 1000;
      } catch (err) {
        setLive("lost", "connection lost; retrying");
        await new Promise((resolve) => setTimeout(resolve, delay));
        delay = Math.min(delay * 2, 10000);
      }
    }
  }

  function setLive(state, text) {
    const node = $("#live-status");
    node.dataset.state = state;
    node.textContent = text;
  }

  // -- the table ---------------------------------------------------------------------------
  function filters() {
    return {
      kind: $("#filter-kind").value,
      state: $("#filter-state").value,
      project: $("#filter-project").value.trim().toLowerCase(),
      problems: $("#filter-problems").checked,
    };
  }

  function matches(row, f) {
    if (f.kind && row.kind !== f.kind) return false;
    if (f.state && row.state_name !== f.state) return false;
    if (f.project && !row.projectid.toLowerCase().includes(f.project)) return false;
    if (f.problems && row.problems.length === 0) return false;
    return true;
  }

  function compare(a, b) {
    const x = a[sortKey], y = b[sortKey];
    if (x === y) return a.id - b.id;
    if (typeof x === "number" && typeof y === "number") return (x - y) * sortDir;
    return String(x).localeCompare(String(y)) * sortDir;
  }

  function syncOptions(select, values) {
    const have = new Set(Array.from(select.options).map((o) => o.value));
    for (const value of values) {
      if (!have.has(value)) select.appendChild(el("option", value)).value = value;
    }
  }

  function render() {
    const all = Array.from(runs.values());
    syncOptions($("#filter-kind"), [...new Set(all.map((r) => r.kind))].sort());
    syncOptions($("#filter-state"), [...new Set(all.map((r) => r.state_name))].sort());
    renderCounts(all);
    const f = filters();
    const shown = all.filter((r) => matches(r, f)).sort(compare);
    const body = document.createDocumentFragment();
    for (const row of shown) body.appendChild(rowNode(row));
    const tbody = $("#runs tbody");
    tbody.replaceChildren(body);
    $("#empty").hidden = shown.length > 0;
    $("#shown-count").textContent = shown.length + " of " + all.length + " runs shown";
    const stale = scheduler && !scheduler.answered;
    $("#stale-banner").hidden = !stale;
    $("#scheduler-status").textContent = scheduler ? scheduler.kind + " scheduler: " +
      (scheduler.last_answer_at ? "answered " + age(now() - scheduler.last_answer_at) + " ago" : "not answered yet") : "";
    for (const th of document.querySelectorAll("#runs thead th")) {
      th.setAttribute("aria-sort", th.dataset.sort === sortKey ? (sortDir > 0 ? "ascending" : "descending") : "none");
    }
    if (!firstRendered) {
      firstRendered = true;
      performance.mark("swampd-first-render");
      document.body.dataset.rendered = "1";
    }
  }

  function renderCounts(all) {
    const byState = new Map();
    for (const row of all) {
      const key = row.state_name;
      const entry = byState.get(key) || { n: 0, problem: false };
      entry.n += 1;
      entry.problem = entry.problem || row.problems.includes("error");
      byState.set(key, entry);
    }
    const current = $("#filter-state").value;
    const box = document.createDocumentFragment();
    const total = el("button", "all");
    total.type = "button";
    total.dataset.state = "";
    total.appendChild(el("span", all.length, "n"));
    total.setAttribute("aria-pressed", current === "" ? "true" : "false");
    box.appendChild(total);
    for (const [state, entry] of [...byState.entries()].sort()) {
      const button = el("button", state, entry.problem ? "problem" : "");
      button.type = "button";
      button.dataset.state = state;
      button.appendChild(el("span", entry.n, "n"));
      button.setAttribute("aria-pressed", current === state ? "true" : "false");
      box.appendChild(button);
    }
    $("#counts").replaceChildren(box);
  }

  function rowNode(row) {
    const tr = el("tr");
    tr.dataset.id = row.id;
    tr.dataset.key = row.key;
    tr.dataset.state = row.state_name;
    if (row.problems.length) tr.classList.add("problem");
    if (row.id === selected) tr.classList.add("selected");
    tr.appendChild(el("td", row.kind));
    tr.appendChild(el("td", row.projectid, "project"));
    tr.appendChild(el("td", row.key, "key"));
    const state = el("td", row.state_name, "state");
    for (const problem of row.problems) state.appendChild(el("span", problem, "flag " + problem));
    tr.appendChild(state);
    tr.appendChild(el("td", row.status, "status"));
    tr.appendChild(el("td", row.epoch, "num"));
    tr.appendChild(el("td", row.job_ref ? row.job + " (" + row.job_ref + ")" : row.job));
    const started = el("td", row.launched_at ? age(now() - row.launched_at) : "", "num age");
    started.dataset.since = row.launched_at || "";
    tr.appendChild(started);
    const inState = el("td", row.state_since ? age(now() - row.state_since) : "", "num age");
    inState.dataset.since = row.state_since || "";
    tr.appendChild(inState);
    tr.appendChild(el("td", row.pending, "num"));
    return tr;
  }

  function tickAges() {  // only the age cells change with the clock; nothing is fetched
    for (const cell of document.querySelectorAll("td.age")) {
      const since = parseFloat(cell.dataset.since);
      if (since) cell.textContent = age(now() - since);
    }
  }

  // -- one run ---------------------------------------------------------------------------
  async function showDetail(id) {
    selected = id;
    for (const tr of document.querySelectorAll("#runs tbody tr")) tr.classList.toggle("selected", +tr.dataset.id === id);
    let detail;
    try {
      detail = await getJSON("/api/runs/" + id);
    } catch (err) {
      return;
    }
    if (selected !== id) return;
    const run = detail.run;
    $("#detail-title").textContent = run.key;
    const facts = document.createDocumentFragment();
    const fact = (name, value) => { facts.appendChild(el("dt", name)); facts.appendChild(el("dd", value)); };
    fact("kind", run.kind);
    fact("project", run.projectid);
    fact("state", run.state_name + (run.problems.length ? " (" + run.problems.join(", ") + ")" : ""));
    fact("status", run.status);
    fact("epoch", run.epoch);
    fact("launch id", detail.launch_id);
    fact("wanted", run.desired);
    fact("job", run.job_ref ? run.job_ref + " — " + run.job + (run.job_detail ? ": " + run.job_detail : "") : run.job);
    fact("launched", when(run.launched_at));
    fact("next deadline", run.deadline ? when(run.deadline) : "none");
    $("#detail-facts").replaceChildren(facts);
    const history = document.createDocumentFragment();
    for (const h of detail.history) {
      const li = el("li");
      li.appendChild(el("span", when(h.at) + " · epoch " + h.epoch + " ", "when"));
      li.appendChild(el("span", (h.from_state_name ? h.from_state_name + " → " : "") + h.state_name, "move"));
      li.appendChild(el("span", " " + h.status));
      if (h.reason && h.reason !== h.status) li.appendChild(el("span", " (" + h.reason + ")"));
      li.appendChild(el("span", " — " + h.source, "source"));
      history.appendChild(li);
    }
    $("#history").replaceChildren(history);
    const pending = document.createDocumentFragment();
    for (const p of detail.pending) {
      const tr = el("tr");
      tr.appendChild(el("td", p.effect));
      tr.appendChild(el("td", p.epoch, "num"));
      tr.appendChild(el("td", p.attempts, "num"));
      tr.appendChild(el("td", p.next_at ? when(p.next_at) : "now"));
      tr.appendChild(el("td", p.last_error, "error"));
      pending.appendChild(tr);
    }
    $("#pending tbody").replaceChildren(pending);
    $("#no-pending").hidden = detail.pending.length > 0;
    $("#run-detail").hidden = false;
  }

  function closeDetail() {
    selected = null;
    $("#run-detail").hidden = true;
    for (const tr of document.querySelectorAll("#runs tbody tr.selected")) tr.classList.remove("selected");
  }

  // -- wiring ------------------------------------------------------------------------------
  function start() {
    for (const id of ["#filter-kind", "#filter-state", "#filter-problems"]) $(id).addEventListener("change", render);
    $("#filter-project").addEventListener("input", render);
    $("#counts").addEventListener("click", (event) => {
      const button = event.target.closest("button");
      if (!button) return;
      $("#filter-state").value = button.dataset.state;
      render();
    });
    $("#runs thead").addEventListener("click", (event) => {
      const th = event.target.closest("th");
      if (!th) return;
      if (sortKey === th.dataset.sort) sortDir = -sortDir; else { sortKey = th.dataset.sort; sortDir = 1; }
      render();
    });
    $("#runs tbody").addEventListener("click", (event) => {
      const tr = event.target.closest("tr");
      if (tr) showDetail(+tr.dataset.id);
    });
    $("#detail-close").addEventListener("click", closeDetail);
    document.addEventListener("keydown", (event) => { if (event.key === "Escape") closeDetail(); });
    setInterval(tickAges, 1000);
    live();
  }

  start();
})();
