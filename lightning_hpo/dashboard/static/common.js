// Helpers shared by the pages. Every piece of data enters the page through textContent (el's
// string children) or plotly's text fields, never as HTML: names, params and errors are data.
"use strict";

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value !== undefined && value !== null) node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function fmt(value) {
  if (value === null || value === undefined) return "-";
  if (typeof value === "number") {
    if (Number.isInteger(value)) return String(value);
    return Math.abs(value) >= 1e-3 && Math.abs(value) < 1e5 ? value.toPrecision(4) : value.toExponential(3);
  }
  return String(value);
}

function when(iso) {
  return iso ? `${iso.replace("T", " ").slice(0, 19)} UTC` : "-";
}

function paramsText(params) {
  return Object.entries(params).map(([k, v]) => `${k}=${fmt(v)}`).join(", ");
}

// Plotly reads a few HTML-like tags in its text fields: data shown there is escaped first.
function esc(text) {
  return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function query(name) {
  return new URLSearchParams(window.location.search).get(name);
}

function studyUrl(name) {
  return `/study?name=${encodeURIComponent(name)}`;
}

function trialUrl(study, number) {
  return `/trial?study=${encodeURIComponent(study)}&number=${encodeURIComponent(number)}`;
}

async function getJson(url) {
  const response = await fetch(url, { credentials: "same-origin" });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

function showError(target, error) {
  target.replaceChildren(el("p", { class: "error" }, String(error.message || error)));
}

// Call step() now and then every `ms`, one at a time, whatever it throws.
function every(ms, step) {
  const run = async () => {
    try {
      await step();
    } catch (error) {
      console.error(error);
    }
    setTimeout(run, ms);
  };
  run();
}

const PLOT_CONFIG = { displaylogo: false, responsive: true };
const STATE_COLORS = { COMPLETE: "#0072B2", PRUNED: "#E69F00", FAIL: "#D55E00", RUNNING: "#56B4E9" };
