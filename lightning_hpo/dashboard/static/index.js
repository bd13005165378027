"use strict";

function renderStudies(data) {
  document.getElementById("storage").textContent = data.storage;
  const header = el("tr", {}, ["study", "mode", "trials", "complete", "pruned", "failed", "running", "best", "last activity"]
    .map((h, i) => el("th", { class: i < 2 ? "text" : null }, h)));
  const rows = data.studies.map((s) => el("tr", {},
    el("td", { class: "text" }, el("a", { href: studyUrl(s.name), class: "study-link" }, s.name)),
    el("td", { class: "text" }, s.directions.join("/")),
    el("td", {}, s.n_trials),
    el("td", {}, s.states.COMPLETE), el("td", {}, s.states.PRUNED), el("td", {}, s.states.FAIL), el("td", {}, s.states.RUNNING),
    el("td", {}, s.best_values ? s.best_values.map(fmt).join(", ") : s.directions.length > 1 ? `${s.best_numbers.length} on the Pareto front` : "-"),
    el("td", {}, when(s.last_activity)),
  ));
  const main = document.getElementById("main");
  main.replaceChildren(el("h1", {}, "Studies"),
    data.studies.length ? el("table", { id: "studies" }, el("thead", {}, header), el("tbody", {}, rows))
      : el("p", { class: "note" }, "This storage holds no studies yet."));
}

if (window.location.pathname === "/") {
  every(2000, async () => {
    try {
      renderStudies(await getJson("/api/studies"));
    } catch (error) {
      showError(document.getElementById("main"), error);
    }
  });
}
