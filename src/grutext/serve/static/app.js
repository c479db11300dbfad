// grutext serve: the web page. Plain JS, no build step, no external files.
"use strict";

const $ = (sel) => document.querySelector(sel);
const PALETTE = ["#ffd8a8", "#b2f2bb", "#a5d8ff", "#eebefa", "#ffc9c9", "#c5f6fa", "#d8f5a2", "#e9ecef"];
let model = null;

function showError(message) {
  const box = $("#error");
  box.textContent = message || "";
  box.hidden = !message;
}

async function call(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({ detail: response.statusText }));
  if (!response.ok) throw new Error(data.detail || `HTTP ${response.status}`);
  return data;
}

function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

function el(tag, props = {}, text = "") {
  const node = document.createElement(tag);
  Object.assign(node, props);
  if (text) node.textContent = text;
  return node;
}

// ---- classifier ----------------------------------------------------------------------------------

function renderBars(result) {
  const bars = $("#bars");
  bars.replaceChildren();
  const entries = Object.entries(result.probs).sort((a, b) => (b[1] ?? -1) - (a[1] ?? -1));
  for (const [label, p] of entries) {
    const row = el("div", { className: "bar" + (label === result.label ? " top" : "") });
    row.dataset.label = label;
    const track = el("div", { className: "track" });
    const fill = el("div", { className: "fill" });
    fill.style.width = `${Math.max(0, Math.min(1, p ?? 0)) * 100}%`;
    track.append(fill);
    row.append(el("span", {}, label), track, el("span", { className: "p" }, p == null ? "n/a" : p.toFixed(3)));
    bars.append(row);
  }
}

function renderImportance(ex) {
  const tokens = $("#tokens");
  const gates = $("#gates");
  tokens.replaceChildren();
  gates.replaceChildren();
  const scale = Math.max(1e-12, ...ex.importance.map((v) => Math.abs(v ?? 0)));
  ex.tokens.forEach((tok, i) => {
    const v = ex.importance[i] ?? 0;
    const a = Math.min(1, Math.abs(v) / scale);
    const span = el("span", {}, tok);
    span.style.background = v >= 0 ? `rgba(31,138,76,${a * 0.75})` : `rgba(200,40,40,${a * 0.75})`;
    const z = ex.update_gate ? ex.update_gate[i] : null;
    span.title = `importance ${v.toFixed(4)}` + (z == null ? "" : ` · update gate ${z.toFixed(3)}`);
    tokens.append(span);
    if (ex.update_gate) {
      const g = el("span", {}, tok);
      g.style.background = `rgba(47,111,176,${(z ?? 0) * 0.8})`;
      g.title = `mean update gate z ${z == null ? "n/a" : z.toFixed(3)} (high: the state keeps its past)`;
      gates.append(g);
    }
  });
  $("#explain-method").textContent = `(${ex.method}, class ${ex.target})`;
  $("#explain-box").hidden = false;
}

async function classify() {
  const text = $("#cls-text").value;
  if (!text.trim()) return;
  try {
    const data = await call("/v1/predict", { text });
    const result = data.results[0];
    $("#label").textContent = result.label ?? "(no label: the model gave non-finite scores)";
    renderBars(result);
    showError(data.warnings ? data.warnings.join("; ") : "");
    if (model.routes.includes("/v1/explain")) renderImportance(await call("/v1/explain", { text }));
  } catch (err) {
    showError(err.message);
  }
}

// ---- language model ------------------------------------------------------------------------------

async function suggest() {
  const text = $("#lm-text").value;
  const box = $("#suggestions");
  if (!text.trim()) return box.replaceChildren();
  try {
    const data = await call("/v1/next-word", { text, k: 6 });
    box.replaceChildren();
    for (const s of data.suggestions) {
      const b = el("button", { type: "button" }, s.word);
      b.title = `p = ${s.prob.toFixed(3)}`;
      b.addEventListener("click", () => {
        const t = $("#lm-text").value;
        const cut = /\s$/.test(t) ? t : t.replace(/\S+$/, "");
        $("#lm-text").value = cut + s.word + " ";
        suggest();
      });
      box.append(b);
    }
    showError("");
  } catch (err) {
    showError(err.message);
  }
}

async function generate() {
  const out = $("#generated");
  out.textContent = "";
  const body = {
    prompt: $("#lm-text").value,
    max_tokens: Number($("#lm-max").value),
    temperature: Number($("#lm-temp").value),
    stream: true,
  };
  try {
    const response = await fetch("/v1/generate", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    if (!response.ok) {
      const data = await response.json().catch(() => ({}));
      throw new Error(data.detail || `HTTP ${response.status}`);
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const kind = (event.match(/^event: (.*)$/m) || [null, "message"])[1];
        const data = JSON.parse((event.match(/^data: (.*)$/m) || [null, "{}"])[1]);
        if (kind === "message") out.textContent += data.token;
        else if (kind === "error") throw new Error(data.detail);
      }
    }
    showError("");
  } catch (err) {
    showError(err.message);
  }
}

// ---- tagger --------------------------------------------------------------------------------------

async function tag() {
  const text = $("#tag-text").value;
  if (!text.trim()) return;
  try {
    const data = await call("/v1/tag", { text });
    const spans = data.results[0].spans;
    const types = [...new Set(spans.map((s) => s.type))];
    const color = (t) => PALETTE[types.indexOf(t) % PALETTE.length];
    const out = $("#tagged");
    out.replaceChildren();
    let pos = 0;
    for (const s of spans) {
      let start = s.start;
      let end = s.end;
      if (text.slice(start, end) !== s.text) {  // offsets of another kind: find the text itself
        start = text.indexOf(s.text, pos);
        end = start + s.text.length;
        if (start < 0) continue;
      }
      out.append(document.createTextNode(text.slice(pos, start)));
      const mark = el("mark", {}, text.slice(start, end));
      mark.style.background = color(s.type);
      mark.append(el("small", {}, s.type));
      mark.dataset.type = s.type;
      out.append(mark);
      pos = end;
    }
    out.append(document.createTextNode(text.slice(pos)));
    const legend = $("#legend");
    legend.replaceChildren(...types.map((t) => {
      const m = el("mark", {}, t);
      m.style.background = color(t);
      return m;
    }));
    showError("");
  } catch (err) {
    showError(err.message);
  }
}

// ---- start ---------------------------------------------------------------------------------------

async function start() {
  try {
    const response = await fetch("/v1/model");
    model = await response.json();
  } catch (err) {
    showError(`cannot read /v1/model: ${err.message}`);
    return;
  }
  const what = model.task.replace("_", " ");
  const labels = model.labels.length ? ` · classes: ${model.labels.join(", ")}` : "";
  const blend = model.blend_weight != null ? ` · blended with n-grams (weight ${model.blend_weight})` : "";
  $("#model-line").textContent = `a ${what} (${model.info.backend})${labels}${blend}`;
  $(`#${model.task}`).hidden = false;
  $("#cls-go").addEventListener("click", classify);
  $("#cls-text").addEventListener("input", debounce(classify, 400));
  $("#lm-text").addEventListener("input", debounce(suggest, 250));
  $("#lm-go").addEventListener("click", generate);
  $("#tag-go").addEventListener("click", tag);
  document.body.dataset.ready = model.task;
}

start();
