"use strict";

function field(label, value, asCode) {
  const shown = value === null || value === undefined || value === "" ? "-" : value;
  return [el("dt", {}, label), el("dd", {}, asCode && shown !== "-" ? el("code", {}, shown) : shown)];
}

// A tracker run is "mlflow: <run URL or id>": a web address becomes a link, anything else stays text.
function trackerRun(run) {
  const at = run.indexOf(": ");
  const where = at < 0 ? run : run.slice(at + 2);
  let url = null;
  try {
    url = new URL(where);
  } catch (error) {
    url = null;
  }
  if (!url || (url.protocol !== "http:" && url.protocol !== "https:")) return el("li", {}, el("code", {}, run));
  return el("li", {}, at < 0 ? "" : run.slice(0, at + 2), el("a", { href: url.href, rel: "noopener noreferrer", target: "_blank" }, where));
}

// Where the trial came from (enqueued, imported, a retry) and its tracker runs, as links where they point.
function originPart(t) {
  const o = t.origin || {};
  const items = [];
  if (o.enqueued) items.push(el("li", {}, `enqueued by Study.enqueue (given: ${o.enqueued.join(", ") || "none"})`));
  if (o.imported_from) {
    const at = o.imported_from.lastIndexOf("#");
    const number = at < 0 ? "" : o.imported_from.slice(at + 1);
    items.push(el("li", {}, "imported from ", /^[0-9]+$/.test(number)
      ? el("a", { href: trialUrl(o.imported_from.slice(0, at), number), id: "imported-from" }, o.imported_from) : o.imported_from));
  }
  if (o.retry_of !== undefined) items.push(el("li", {}, "a retry of ", el("a", { href: trialUrl(t.study, o.retry_of), id: "retry-of" }, `trial ${o.retry_of}`)));
  if (o.retried_by !== undefined) items.push(el("li", {}, "retried by ", el("a", { href: trialUrl(t.study, o.retried_by) }, `trial ${o.retried_by}`)));
  const runs = o.tracker_runs || [];
  return [
    el("h2", {}, "Origin"),
    items.length ? el("ul", { id: "origin" }, items) : el("p", { class: "note", id: "origin" }, "sampled by the study's sampler"),
    el("h2", {}, "Tracker runs"),
    runs.length ? el("ul", { id: "tracker-runs" }, runs.map(trackerRun)) : el("p", { class: "note" }, "none recorded"),
  ];
}

function renderTrial(t) {
  document.title = `trial ${t.number} of ${t.study}`;
  const main = document.getElementById("main");
  const params = el("table", { id: "params" }, el("tbody", {},
    Object.entries(t.params).map(([k, v]) => el("tr", {}, el("td", { class: "text" }, k), el("td", {}, fmt(v))))));
  const parts = [
    el("p", {}, el("a", { href: studyUrl(t.study), id: "back" }, `study ${t.study}`)),
    el("h1", {}, `Trial ${t.number}`),
    el("dl", { id: "facts" },
      field("state", t.state),
      field("values", t.values ? t.values.map((v, i) => `${t.labels[i]}: ${fmt(v)}`).join(", ") : null),
      field("note", t.note),
      field("started", when(t.start)), field("ended", when(t.end)),
      field("seconds", t.duration === null ? null : t.duration.toFixed(1)),
      field("worker", t.worker),
      field("log directory", t.log_dir, true),
      field("checkpoint", t.checkpoint, true),
      field("export it", t.export_command, true),
      field("retrain it", t.retrain_command || (t.has_config ? null : "no fit config stored (not run by `train.py tune`): its parameters are above"), Boolean(t.retrain_command)),
    ),
    el("h2", {}, "Parameters"), params,
    ...originPart(t),
    el("h2", {}, "Intermediate values"),
    t.vectors.length ? el("div", { id: "curve", class: "chart" }) : el("p", { class: "note" }, "none reported"),
  ];
  if (t.error) parts.push(el("h2", {}, "Error"), el("pre", { id: "error" }, t.error));
  main.replaceChildren(...parts);
  if (!t.vectors.length) return t.state === "RUNNING";
  const traces = t.labels.map((label, i) => ({
    x: t.vectors.map((p) => p[0]), y: t.vectors.map((p) => p[1][i]), name: esc(label), mode: "lines+markers", type: "scatter",
  }));
  Plotly.react("curve", traces, { margin: { t: 20, r: 20 }, xaxis: { title: { text: "step" } } }, PLOT_CONFIG);
  return t.state === "RUNNING";
}

let running = true;
if (window.location.pathname === "/trial") {
  every(2000, async () => {
    if (!running) return;
    try {
      running = renderTrial(await getJson(`/api/trial?study=${encodeURIComponent(query("study"))}&number=${encodeURIComponent(query("number"))}`));
    } catch (error) {
      running = false;
      showError(document.getElementById("main"), error);
    }
  });
}
