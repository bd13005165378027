"use strict";

// The study page: polls /api/study with the version it last saw, so each answer holds only the
// trials that are new or changed since; the page keeps every trial and redraws from them.
const studyName = query("name");
const trials = new Map();
let version = 0;
let summary = null;
let sortKey = "number";
let sortDescending = false;
let stateFilter = "";
const MAX_ROWS = 1000;

function buildPage() {
  const filter = el("select", { id: "state-filter" }, el("option", { value: "" }, "all states"),
    ["COMPLETE", "PRUNED", "FAIL", "RUNNING"].map((s) => el("option", { value: s }, s)));
  filter.addEventListener("change", () => { stateFilter = filter.value; renderTable(); });
  const charts = ["history", "curves", "parcoords", "importance"].map((id) => el("div", { id, class: "chart" }));
  document.getElementById("main").replaceChildren(
    el("h1", { id: "title" }, studyName),
    el("p", { id: "summary" }),
    el("div", { class: "charts" }, charts, el("div", { id: "pareto", class: "chart", hidden: "" })),
    el("h2", {}, "Slices: objective by parameter"), el("div", { id: "slices", class: "charts" }),
    el("h2", {}, "Trials "), el("label", {}, "state: ", filter), el("span", { id: "row-note", class: "note" }),
    el("div", { class: "table-box" }, el("table", { id: "trials" })),
  );
  document.title = `${studyName}: lightning_hpo`;
}

function renderSummary() {
  const s = summary;
  const best = s.best_values ? `best ${s.labels[0]}: ${fmt(s.best_values[0])} (trial ${s.best_number})`
    : s.directions.length > 1 ? `${s.best_numbers.length} trials on the Pareto front` : "no COMPLETE trial yet";
  const states = Object.entries(s.states).map(([k, v]) => `${v} ${k.toLowerCase()}`).join(", ");
  document.getElementById("summary").textContent =
    `${s.directions.join("/")} · ${s.n_trials} trials (${states}) · ${best} · last activity ${when(s.last_activity)}`;
}

function columns() {
  const cols = [{ key: "number", label: "#", get: (t) => t.number }, { key: "state", label: "state", get: (t) => t.state, text: true }];
  summary.labels.forEach((label, i) => cols.push({ key: `v${i}`, label, get: (t) => (t.values ? t.values[i] : null) }));
  summary.params.forEach((p) => cols.push({ key: `p:${p}`, label: p, get: (t) => t.params[p] }));
  cols.push({ key: "duration", label: "seconds", get: (t) => t.duration });
  cols.push({ key: "steps", label: "steps", get: (t) => t.curve.length });
  cols.push({ key: "note", label: "note", get: (t) => t.note, text: true });
  return cols;
}

function compare(a, b) {
  if (a === b) return 0;
  if (a === null || a === undefined) return 1;
  if (b === null || b === undefined) return -1;
  return a < b ? -1 : 1;
}

function renderTable() {
  const cols = columns();
  const col = cols.find((c) => c.key === sortKey) || cols[0];
  let rows = [...trials.values()].filter((t) => !stateFilter || t.state === stateFilter);
  rows.sort((a, b) => (sortDescending ? -1 : 1) * compare(col.get(a), col.get(b)) || a.number - b.number);
  const total = rows.length;
  rows = rows.slice(0, MAX_ROWS);
  document.getElementById("row-note").textContent = total > MAX_ROWS ? ` showing the first ${MAX_ROWS} of ${total}` : ` ${total} shown`;
  const header = el("tr", {}, cols.map((c) => {
    const th = el("th", { class: c.text ? "text" : null, "data-key": c.key }, c.label + (c.key === sortKey ? (sortDescending ? " ▼" : " ▲") : ""));
    th.addEventListener("click", () => {
      sortDescending = sortKey === c.key ? !sortDescending : false;
      sortKey = c.key;
      renderTable();
    });
    return th;
  }));
  const body = rows.map((t) => el("tr", { "data-number": t.number }, cols.map((c) => {
    if (c.key === "number") return el("td", {}, el("a", { href: trialUrl(studyName, t.number) }, t.number));
    if (c.key === "state") return el("td", { class: `text state-${t.state}` }, t.state);
    return el("td", { class: c.text ? "text" : null }, fmt(c.get(t)));
  })));
  document.getElementById("trials").replaceChildren(el("thead", {}, header), el("tbody", {}, body));
}

function hover(t) {
  return `trial ${t.number} (${t.state})<br>${esc(paramsText(t.params))}`;
}

function layout(title, xTitle, yTitle) {
  return { title: { text: esc(title) }, margin: { t: 40, r: 20, b: 50 }, xaxis: { title: { text: esc(xTitle) } }, yaxis: { title: { text: esc(yTitle) } }, legend: { orientation: "h", y: -0.25 } };
}

function completed() {
  return [...trials.values()].filter((t) => t.state === "COMPLETE" && t.values && t.values[0] !== null).sort((a, b) => a.number - b.number);
}

function renderHistory(done) {
  const minimize = summary.directions[0] === "min";
  let best = null;
  const bestSoFar = done.map((t) => (best = best === null ? t.values[0] : minimize ? Math.min(best, t.values[0]) : Math.max(best, t.values[0])));
  Plotly.react("history", [
    { x: done.map((t) => t.number), y: done.map((t) => t.values[0]), mode: "markers", name: "complete", text: done.map(hover), hoverinfo: "text+y", marker: { color: STATE_COLORS.COMPLETE } },
    { x: done.map((t) => t.number), y: bestSoFar, mode: "lines", line: { shape: "hv", color: "#D55E00" }, name: "best so far" },
  ], layout("Optimization history", "trial number", summary.labels[0]), PLOT_CONFIG);
}

function renderCurves() {
  // One trace per state, trials separated by gaps: a few traces draw fast even for thousands of trials.
  const traces = [];
  for (const state of ["COMPLETE", "RUNNING", "PRUNED", "FAIL"]) {
    const x = [], y = [], text = [];
    for (const t of trials.values()) {
      if (t.state !== state || !t.curve.length) continue;
      for (const [step, value] of t.curve) { x.push(step); y.push(value); text.push(hover(t)); }
      x.push(null); y.push(null); text.push(null);
    }
    if (!x.length) continue;
    traces.push({ x, y, text, hoverinfo: "text+y", mode: state === "PRUNED" ? "lines+markers" : "lines", name: state.toLowerCase(),
      line: { color: STATE_COLORS[state], width: 1, dash: state === "PRUNED" ? "dot" : "solid" }, marker: { symbol: "x", size: 4 }, connectgaps: false });
  }
  Plotly.react("curves", traces, layout("Learning curves (intermediate values)", "step", summary.labels[0]), PLOT_CONFIG);
}

function dimension(label, values) {
  if (values.every((v) => typeof v === "number" || v === null || v === undefined)) return { label, values };
  // An inactive conditional parameter (null) stays null rather than becoming a choice named "null".
  const choices = [...new Set(values.filter((v) => v !== null && v !== undefined).map(String))].sort();
  return { label, values: values.map((v) => (v === null || v === undefined ? null : choices.indexOf(String(v)))), tickvals: choices.map((_, i) => i), ticktext: choices };
}

function renderParcoords(done) {
  const dims = summary.params.map((p) => dimension(esc(p), done.map((t) => t.params[p] ?? null)));
  dims.push({ label: esc(summary.labels[0]), values: done.map((t) => t.values[0]) });
  Plotly.react("parcoords", [{ type: "parcoords", dimensions: dims, line: { color: done.map((t) => t.values[0]), colorscale: "Viridis", showscale: true, reversescale: summary.directions[0] === "min" } }],
    { title: { text: "Parallel coordinates", y: 0.98 }, margin: { t: 90, l: 60, r: 60 } }, PLOT_CONFIG);
}

function renderSlices(done) {
  const box = document.getElementById("slices");
  if (box.children.length !== summary.params.length) {
    box.replaceChildren(...summary.params.map((_, i) => el("div", { id: `slice-${i}`, class: "small-chart" })));
  }
  summary.params.forEach((p, i) => {
    const x = done.map((t) => t.params[p] ?? null);
    Plotly.react(`slice-${i}`, [{ x: x.map((v) => (typeof v === "number" || v === null ? v : String(v))), y: done.map((t) => t.values[0]), mode: "markers", type: "scatter", text: done.map(hover), hoverinfo: "text+y",
      marker: { color: done.map((t) => t.number), colorscale: "Blues", size: 6 } }], layout(p, p, summary.labels[0]), PLOT_CONFIG);
  });
}

function renderPareto(done) {
  const box = document.getElementById("pareto");
  if (summary.directions.length < 2) return;
  box.hidden = false;
  const front = new Set(summary.best_numbers);
  const part = (onFront) => done.filter((t) => front.has(t.number) === onFront && t.values[1] !== null).sort((a, b) => a.values[0] - b.values[0]);
  const trace = (list, name, extra) => ({ x: list.map((t) => t.values[0]), y: list.map((t) => t.values[1]), text: list.map(hover), hoverinfo: "text+x+y", name, ...extra });
  Plotly.react("pareto", [
    trace(part(false), "dominated", { mode: "markers", marker: { color: "#bbb" } }),
    trace(part(true), "Pareto front", { mode: "lines+markers", line: { shape: "hv" }, marker: { color: "#D55E00", size: 8 } }),
  ], layout("Pareto front", summary.labels[0], summary.labels[1]), PLOT_CONFIG);
}

let importanceFor = -1;
async function renderImportance(nComplete) {
  if (nComplete === importanceFor || nComplete < 2) return;
  importanceFor = nComplete;
  try {
    const data = await getJson(`/api/importance?name=${encodeURIComponent(studyName)}`);
    const names = Object.keys(data.scores).reverse();
    Plotly.react("importance", [{ type: "bar", orientation: "h", x: names.map((n) => data.scores[n]), y: names.map(esc), marker: { color: STATE_COLORS.COMPLETE } }],
      layout(`Importance (${data.n_complete} complete trials)`, "share of variance", ""), PLOT_CONFIG);
  } catch (error) {
    document.getElementById("importance").replaceChildren(el("p", { class: "note" }, `Importance: ${error.message}`));
  }
}

let lastImportanceAt = 0;
function render() {
  renderSummary();
  renderTable();
  const done = completed();
  renderCurves();
  if (done.length) {
    renderHistory(done);
    renderParcoords(done);
    renderSlices(done);
    renderPareto(done);
  }
  // Importance fits a model: refresh it at most every 30 s while trials complete.
  if (Date.now() - lastImportanceAt > 30000 && done.length !== importanceFor) {
    lastImportanceAt = Date.now();
    renderImportance(done.length);
  }
}

let built = false;
if (window.location.pathname === "/study") {
  every(1000, async () => {
    let data;
    try {
      data = await getJson(`/api/study?name=${encodeURIComponent(studyName)}&since=${version}`);
    } catch (error) {
      showError(document.getElementById("main"), error);
      built = false;
      return;
    }
    if (!built) { buildPage(); built = true; }
    if (data.reset) trials.clear();
    for (const t of data.trials) trials.set(t.number, t);
    const changed = data.trials.length > 0 || data.reset || version === 0;
    version = data.version;
    summary = data.study;
    if (changed) render(); else renderSummary();
  });
}
