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
let objective = 0; // the objective the charts show, chosen in a study with several
const MAX_ROWS = 1000;

function buildPage() {
  const filter = el("select", { id: "state-filter" }, el("option", { value: "" }, "all states"),
    ["COMPLETE", "PRUNED", "FAIL", "RUNNING"].map((s) => el("option", { value: s }, s)));
  filter.addEventListener("change", () => { stateFilter = filter.value; renderTable(); });
  const charts = ["history", "curves", "parcoords", "importance"].map((id) => el("div", { id, class: "chart" }));
  const chooser = el("select", { id: "objective" });
  chooser.addEventListener("change", () => { objective = Number(chooser.value); importanceFor = -1; lastImportanceAt = 0; chartsDrawnAt = 0; render(); });
  document.getElementById("main").replaceChildren(
    el("h1", { id: "title" }, studyName),
    el("p", { id: "summary" }),
    el("p", { id: "objective-box", hidden: "" }, el("label", {}, "charts show: ", chooser)),
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
  cols.push({ key: "origin", label: "origin", get: originText, text: true });
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
    if (c.key === "number") return el("td", { "data-key": c.key }, el("a", { href: trialUrl(studyName, t.number) }, t.number));
    if (c.key === "state") return el("td", { class: `text state-${t.state}`, "data-key": c.key }, t.state);
    return el("td", { class: c.text ? "text" : null, "data-key": c.key }, fmt(c.get(t)));
  })));
  document.getElementById("trials").replaceChildren(el("thead", {}, header), el("tbody", {}, body));
}

function hover(t) {
  return `trial ${t.number} (${t.state})<br>${esc(paramsText(t.params))}`;
}

function layout(title, xTitle, yTitle) {
  return { title: { text: esc(title) }, margin: { t: 40, r: 20, b: 50 }, xaxis: { title: { text: esc(xTitle) } }, yaxis: { title: { text: esc(yTitle) } }, legend: { orientation: "h", y: -0.25 } };
}

// Where a trial came from, in a few words: enqueued, imported, a retry; and how many tracker runs it has.
function originText(t) {
  const o = t.origin || {};
  const parts = [];
  if (o.enqueued) parts.push("enqueued");
  if (o.imported_from) parts.push(`imported from ${o.imported_from}`);
  if (o.retry_of !== undefined) parts.push(`retry of ${o.retry_of}`);
  if (o.retried_by !== undefined) parts.push(`retried by ${o.retried_by}`);
  if (o.tracker_runs) parts.push(`${o.tracker_runs.length} tracker run${o.tracker_runs.length === 1 ? "" : "s"}`);
  return parts.join(", ");
}

// The chosen objective's value of a trial, and of a curve point ([step, value] or [step, [values]]).
const valueOf = (t) => (t.values ? t.values[objective] ?? null : null);
const pointValue = (p) => (Array.isArray(p[1]) ? p[1][objective] ?? null : objective === 0 ? p[1] : null);
const label = () => summary.labels[objective];

function completed() {
  return [...trials.values()].filter((t) => t.state === "COMPLETE" && valueOf(t) !== null).sort((a, b) => a.number - b.number);
}

function renderHistory(done) {
  const minimize = summary.directions[objective] === "min";
  let best = null;
  const bestSoFar = done.map((t) => (best = best === null ? valueOf(t) : minimize ? Math.min(best, valueOf(t)) : Math.max(best, valueOf(t))));
  Plotly.react("history", [
    { x: done.map((t) => t.number), y: done.map(valueOf), mode: "markers", name: "complete", text: done.map(hover), hoverinfo: "text+y", marker: { color: STATE_COLORS.COMPLETE } },
    { x: done.map((t) => t.number), y: bestSoFar, mode: "lines", line: { shape: "hv", color: "#D55E00" }, name: "best so far" },
  ], layout("Optimization history", "trial number", label()), PLOT_CONFIG);
}

function renderCurves() {
  // One trace per state, trials separated by gaps: a few traces draw fast even for thousands of trials.
  const traces = [];
  for (const state of ["COMPLETE", "RUNNING", "PRUNED", "FAIL"]) {
    const x = [], y = [], text = [];
    for (const t of trials.values()) {
      if (t.state !== state || !t.curve.length) continue;
      for (const point of t.curve) { x.push(point[0]); y.push(pointValue(point)); text.push(hover(t)); }
      x.push(null); y.push(null); text.push(null);
    }
    if (!x.length) continue;
    traces.push({ x, y, text, hoverinfo: "text+y", mode: state === "PRUNED" ? "lines+markers" : "lines", name: state.toLowerCase(),
      line: { color: STATE_COLORS[state], width: 1, dash: state === "PRUNED" ? "dot" : "solid" }, marker: { symbol: "x", size: 4 }, connectgaps: false });
  }
  Plotly.react("curves", traces, layout("Learning curves (intermediate values)", "step", label()), PLOT_CONFIG);
}

function dimension(label, values) {
  if (values.every((v) => typeof v === "number" || v === null || v === undefined)) return { label, values };
  // An inactive conditional parameter (null) stays null rather than becoming a choice named "null".
  const choices = [...new Set(values.filter((v) => v !== null && v !== undefined).map(String))].sort();
  return { label, values: values.map((v) => (v === null || v === undefined ? null : choices.indexOf(String(v)))), tickvals: choices.map((_, i) => i), ticktext: choices };
}

function renderParcoords(done) {
  const dims = summary.params.map((p) => dimension(esc(p), done.map((t) => t.params[p] ?? null)));
  dims.push({ label: esc(label()), values: done.map(valueOf) });
  Plotly.react("parcoords", [{ type: "parcoords", dimensions: dims, line: { color: done.map(valueOf), colorscale: "Viridis", showscale: true, reversescale: summary.directions[objective] === "min" } }],
    { title: { text: "Parallel coordinates", y: 0.98 }, margin: { t: 90, l: 60, r: 60 } }, PLOT_CONFIG);
}

function renderSlices(done) {
  const box = document.getElementById("slices");
  if (box.children.length !== summary.params.length) {
    box.replaceChildren(...summary.params.map((_, i) => el("div", { id: `slice-${i}`, class: "small-chart" })));
  }
  summary.params.forEach((p, i) => {
    const x = done.map((t) => t.params[p] ?? null);
    Plotly.react(`slice-${i}`, [{ x: x.map((v) => (typeof v === "number" || v === null ? v : String(v))), y: done.map(valueOf), mode: "markers", type: "scatter", text: done.map(hover), hoverinfo: "text+y",
      marker: { color: done.map((t) => t.number), colorscale: "Blues", size: 6 } }], layout(p, p, label()), PLOT_CONFIG);
  });
}

function renderPareto() {
  const box = document.getElementById("pareto");
  if (summary.directions.length < 2) return;
  box.hidden = false;
  // The front of objectives 0 and 1, whichever objective the other charts show.
  const done = [...trials.values()].filter((t) => t.state === "COMPLETE" && t.values && t.values[0] !== null);
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
    const data = await getJson(`/api/importance?name=${encodeURIComponent(studyName)}&objective=${objective}`);
    const names = Object.keys(data.scores).reverse();
    const title = `Importance for ${label()} (${data.n_complete} complete trials)`;
    Plotly.react("importance", [{ type: "bar", orientation: "h", x: names.map((n) => data.scores[n]), y: names.map(esc), marker: { color: STATE_COLORS.COMPLETE } }],
      layout(title, "share of variance", ""), PLOT_CONFIG);
  } catch (error) {
    document.getElementById("importance").replaceChildren(el("p", { class: "note" }, `Importance: ${error.message}`));
  }
}

function renderObjectiveChooser() {
  const chooser = document.getElementById("objective");
  if (summary.directions.length < 2 || chooser.options.length === summary.labels.length) return;
  chooser.replaceChildren(...summary.labels.map((text, i) => el("option", { value: i }, text)));
  chooser.value = String(objective);
  document.getElementById("objective-box").hidden = false;
}

let lastImportanceAt = 0;
let chartsDrawnAt = 0;
let chartsMs = 0;
function render() {
  renderSummary();
  renderObjectiveChooser();
  renderTable();
  // The charts of a study of thousands of trials take the browser a while: redraw them at most every
  // five times as long as they last took, so that the table and the summary stay live.
  if (performance.now() - chartsDrawnAt < 5 * chartsMs) { chartsPending = true; return; }
  chartsPending = false;
  const began = performance.now();
  const done = completed();
  renderCurves();
  if (done.length) {
    renderHistory(done);
    renderParcoords(done);
    renderSlices(done);
  }
  renderPareto();
  chartsDrawnAt = performance.now();
  chartsMs = chartsDrawnAt - began;
  // Importance fits a model: refresh it at most every 30 s while trials complete.
  if (Date.now() - lastImportanceAt > 30000 && done.length !== importanceFor) {
    lastImportanceAt = Date.now();
    renderImportance(done.length);
  }
}

let built = false;
let chartsPending = false;
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
    // Each trial's curve travels apart from its row: curves[i] is trials[i]'s.
    data.trials.forEach((t, i) => { t.curve = data.curves[i]; trials.set(t.number, t); });
    const changed = data.trials.length > 0 || data.reset || version === 0;
    version = data.version;
    summary = data.study;
    if (changed || chartsPending) render(); else renderSummary();
  });
}
