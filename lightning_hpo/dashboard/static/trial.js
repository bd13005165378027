"use strict";

function field(label, value, asCode) {
  const shown = value === null || value === undefined || value === "" ? "-" : value;
  return [el("dt", {}, label), el("dd", {}, asCode && shown !== "-" ? el("code", {}, shown) : shown)];
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
