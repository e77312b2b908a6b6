// The unroll explorer: tooltips, the step slider and play, forward and backward passes,
// the linked plot of log10 ||dL/ds_t||. Everything it needs is in #unroll-data.
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("unroll-data").textContent);
  const scale = data.scale;
  const last = data.steps - 1;
  const slider = document.getElementById("step");
  const playButton = document.getElementById("play");
  const stepLabel = document.getElementById("step-label");
  const tooltip = document.getElementById("tooltip");
  const SHAPES = "polygon, ellipse, path";
  const MODEL_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f"];
  const DASHES = ["", "6 3", "2 3", "8 3 2 3"];
  let timer = null;

  // ---- numbers and colours ----------------------------------------------------------------
  const num = (x) => (typeof x === "string" ? x : x === null ? "–" : Number(x).toPrecision(6));
  function log10Text(v) {
    if (v === null) return "–";
    if (v === "-inf") return "−∞ (exactly 0)";
    if (v === "inf") return "+∞";
    return v.toFixed(4);
  }
  function normText(v) {
    if (typeof v !== "number") return v === "-inf" ? "0" : "–";
    const e = Math.floor(v);
    return (Math.pow(10, v - e)).toFixed(3) + "e" + e;
  }
  function mix(a, b, p) {
    const c = (h, i) => parseInt(h.slice(1 + 2 * i, 3 + 2 * i), 16);
    let out = "#";
    for (let i = 0; i < 3; i++) out += Math.round(c(a, i) + (c(b, i) - c(a, i)) * p).toString(16).padStart(2, "0");
    return out;
  }
  function colour(v) {
    if (v === "-inf") return scale.zero;
    const x = v === "inf" ? scale.high : v;
    const p = Math.min(Math.max((x - scale.low) / (scale.high - scale.low), 0), 1) * (scale.stops.length - 1);
    const i = Math.min(Math.floor(p), scale.stops.length - 2);
    return mix(scale.stops[i], scale.stops[i + 1], p - i);
  }
  function ink(fill) {
    const c = (i) => parseInt(fill.slice(1 + 2 * i, 3 + 2 * i), 16);
    return 0.299 * c(0) + 0.587 * c(1) + 0.114 * c(2) > 140 ? "#000000" : "#ffffff";
  }

  // ---- the node copies of every diagram -----------------------------------------------------
  const copies = [];
  document.querySelectorAll(".panel").forEach((panel) => {
    const run = Number(panel.dataset.run);
    panel.querySelectorAll("g.node[data-node]").forEach((g) => {
      const info = data.runs[run].copies[g.dataset.node + "|" + g.dataset.step];
      const shapes = Array.from(g.querySelectorAll(SHAPES)).filter((s) => !["none", "transparent"].includes(s.getAttribute("fill")));
      copies.push({ g, run, info, step: Number(g.dataset.step), shapes, texts: Array.from(g.querySelectorAll("text")) });
    });
  });
  const copiesOf = (run, node) => copies.filter((c) => c.run === run && c.info.node === node);

  function paint(copy, on) {
    const fill = on && copy.info.log10 !== null ? colour(copy.info.log10) : null;
    copy.shapes.forEach((s) => { s.style.fill = fill || ""; });
    copy.texts.forEach((t) => { t.style.fill = fill ? ink(fill) : ""; });
    copy.g.dataset.painted = fill || "";
  }

  // ---- the state: pass and step -------------------------------------------------------------
  const pass = () => document.querySelector('input[name="pass"]:checked').value;
  function stepText(t) {
    const hidden = data.runs.every((r) => !r.shown.includes(t));
    const what = pass() === "forward" ? "forward pass at" : "gradient front at";
    return `${what} step ${t + 1} of ${data.steps} (t = ${t})` + (hidden ? " — elided in the diagram" : "");
  }
  function show() {
    const t = Number(slider.value);
    const forward = pass() === "forward";
    copies.forEach((c) => {
      const inside = c.step >= 0 && c.step <= last;
      const reached = forward ? !inside || c.step <= t : c.step >= t || (c.step < 0 && t === 0) || c.step > last;
      c.g.classList.toggle("pending", !reached);
      c.g.classList.toggle("front", inside && c.step === t);
      paint(c, !forward && reached);
    });
    markSteps("current", t);
    stepLabel.value = stepText(t);
    slider.setAttribute("aria-valuetext", stepText(t));
    document.body.dataset.step = String(t);
    document.body.dataset.pass = pass();
    drawCursor(t, forward);
  }

  // Mark step t's cluster in every diagram, or the elided steps' when t is one of them.
  function markSteps(cls, t) {
    document.querySelectorAll(".panel").forEach((panel) => {
      const hidden = t !== null && !data.runs[Number(panel.dataset.run)].shown.includes(t);
      panel.querySelectorAll("g.cluster[data-step]").forEach((g) => g.classList.toggle(cls, t !== null && Number(g.dataset.step) === t));
      panel.querySelectorAll("g.cluster[data-elided]").forEach((g) => g.classList.toggle(cls, hidden));
    });
  }

  // ---- play ----------------------------------------------------------------------------------
  function stop() {
    if (timer !== null) clearInterval(timer);
    timer = null;
    playButton.textContent = "▶ Play";
    playButton.setAttribute("aria-pressed", "false");
  }
  function play() {
    if (timer !== null) return stop();
    const forward = pass() === "forward";
    let t = Number(slider.value);
    if (forward ? t >= last : t <= 0) t = forward ? 0 : last;
    else t += forward ? 1 : -1;
    slider.value = String(t);
    show();
    playButton.textContent = "❚❚ Pause";
    playButton.setAttribute("aria-pressed", "true");
    const interval = Math.min(600, Math.max(60, 8000 / data.steps));
    timer = setInterval(() => {
      const now = Number(slider.value);
      if (forward ? now >= last : now <= 0) return stop();
      slider.value = String(now + (forward ? 1 : -1));
      show();
    }, interval);
  }

  // ---- the tooltip ---------------------------------------------------------------------------
  function vectorText(v, size) {
    return "[" + v.map(num).join(", ") + (size > v.length ? `, … (${size - v.length} more)` : "") + "]";
  }
  function openTooltip(copy, x, y) {
    const i = copy.info;
    const run = data.runs[copy.run];
    const about = copy.g.querySelector("[data-about]");
    const batch = run.batch > 1 ? ` (batch item 1 of ${run.batch}; the norm is over the batch)` : "";
    tooltip.innerHTML = "";
    const line = (cls, text) => { const d = document.createElement("div"); d.className = cls; d.textContent = text; tooltip.appendChild(d); };
    line("name", `${i.node} — step ${i.step + 1} (t = ${i.step}) — ${run.label}`);
    if (about) line("about", about.dataset.about);
    line("value", `value ${vectorText(i.value, i.size)}${batch}`);
    line("grad", `dL/dv ${vectorText(i.grad, i.size)}`);
    line("log10", `log10 ‖dL/dv‖ = ${log10Text(i.log10)}  (‖dL/dv‖ = ${normText(i.log10)})`);
    tooltip.dataset.node = i.node;
    tooltip.dataset.step = String(i.step);
    tooltip.hidden = false;
    const box = tooltip.getBoundingClientRect();
    tooltip.style.left = Math.max(4, Math.min(x + 14, window.innerWidth - box.width - 8)) + "px";
    tooltip.style.top = Math.max(4, Math.min(y + 14, window.innerHeight - box.height - 8)) + "px";
    copies.forEach((c) => c.g.classList.toggle("same", c !== copy && c.run === copy.run && c.info.node === i.node));
    copy.g.classList.add("hover");
    copy.g.setAttribute("aria-describedby", "tooltip");
    link(i.step);
  }
  function closeTooltip(copy) {
    tooltip.hidden = true;
    copies.forEach((c) => c.g.classList.remove("same"));
    copy.g.classList.remove("hover");
    copy.g.removeAttribute("aria-describedby");
    link(null);
  }
  copies.forEach((copy) => {
    copy.g.addEventListener("mouseenter", (e) => openTooltip(copy, e.clientX, e.clientY));
    copy.g.addEventListener("mousemove", (e) => openTooltip(copy, e.clientX, e.clientY));
    copy.g.addEventListener("mouseleave", () => closeTooltip(copy));
    copy.g.addEventListener("focus", () => {
      const r = copy.g.getBoundingClientRect();
      openTooltip(copy, r.right, r.top);
    });
    copy.g.addEventListener("blur", () => closeTooltip(copy));
    copy.g.addEventListener("keydown", (e) => {
      if (e.key === "Escape") return closeTooltip(copy);
      if (e.key !== "ArrowLeft" && e.key !== "ArrowRight") return;
      const same = copiesOf(copy.run, copy.info.node).sort((a, b) => a.step - b.step);
      const next = same[same.indexOf(copy) + (e.key === "ArrowRight" ? 1 : -1)];
      if (next) next.g.focus();
      e.preventDefault();
    });
  });

  // ---- the plot ------------------------------------------------------------------------------
  const plot = document.getElementById("plot-svg");
  const SVG = "http://www.w3.org/2000/svg";
  const P = { left: 60, right: 170, top: 12, bottom: 40, width: 900, height: 300 };
  const xOf = (t) => P.left + (data.steps > 1 ? (t / last) : 0.5) * (P.width - P.left - P.right);
  const yOf = (v) => P.top + (1 - (v - scale.low) / (scale.high - scale.low)) * (P.height - P.top - P.bottom);
  function el(name, attrs, parent) {
    const e = document.createElementNS(SVG, name);
    Object.entries(attrs).forEach(([k, v]) => e.setAttribute(k, v));
    (parent || plot).appendChild(e);
    return e;
  }
  const unreached = el("rect", { class: "unreached", y: P.top, height: P.height - P.top - P.bottom, x: P.left, width: 0 });
  function drawAxes() {
    const ticks = [];
    const stride = Math.max(1, Math.ceil((scale.high - scale.low) / 8));
    for (let d = scale.low; d <= scale.high; d += stride) ticks.push(d);
    ticks.forEach((d) => {
      el("line", { class: "grid", x1: P.left, x2: P.width - P.right, y1: yOf(d), y2: yOf(d) });
      el("text", { x: P.left - 6, y: yOf(d) + 4, "text-anchor": "end" }).textContent = d === 0 ? "1" : `1e${d}`;
    });
    const xStride = Math.max(1, Math.ceil(data.steps / 10));
    for (let t = 0; t <= last; t += xStride) {
      el("text", { x: xOf(t), y: P.height - P.bottom + 16, "text-anchor": "middle" }).textContent = String(t + 1);
    }
    el("line", { class: "axis", x1: P.left, x2: P.width - P.right, y1: P.height - P.bottom, y2: P.height - P.bottom });
    el("line", { class: "axis", x1: P.left, x2: P.left, y1: P.top, y2: P.height - P.bottom });
    el("text", { x: (P.left + P.width - P.right) / 2, y: P.height - 6, "text-anchor": "middle" }).textContent = "step (the loss sits at the last)";
  }
  function drawCurves() {
    let row = 0;
    data.runs.forEach((run, r) => {
      run.states.forEach((state, s) => {
        const values = run.norms[state];
        const colourOf = MODEL_COLOURS[r % MODEL_COLOURS.length];
        let d = "";
        let pen = false;  // a gap (no copy, an exact zero) lifts the pen
        values.forEach((v, t) => {
          if (typeof v !== "number") { pen = false; return; }
          d += (pen ? "L" : "M") + xOf(t).toFixed(1) + "," + yOf(v).toFixed(1);
          pen = true;
        });
        el("path", { d, fill: "none", stroke: colourOf, "stroke-width": 2, "stroke-dasharray": DASHES[s % DASHES.length], "data-run": r, "data-state": state });
        const y = P.top + 14 * row++;
        el("line", { x1: P.width - P.right + 12, x2: P.width - P.right + 36, y1: y + 4, y2: y + 4, stroke: colourOf, "stroke-width": 2, "stroke-dasharray": DASHES[s % DASHES.length] });
        el("text", { x: P.width - P.right + 40, y: y + 8 }).textContent = `${run.label}: ${state}`;
      });
    });
  }
  // One hover area over the plot (a rect per step would be 10,000 rects for a long run):
  // the step under the pointer is linked; a click moves the slider there.
  let cursor, marker, band;
  const plotWidth = P.width - P.left - P.right;
  const stepWidth = plotWidth / Math.max(1, last);
  function stepAt(e) {
    const point = plot.createSVGPoint();
    point.x = e.clientX;
    point.y = e.clientY;
    const x = point.matrixTransform(plot.getScreenCTM().inverse()).x;
    return Math.min(last, Math.max(0, Math.round(((x - P.left) / plotWidth) * last)));
  }
  function drawColumns() {
    band = el("rect", { class: "band", y: P.top, height: P.height - P.top - P.bottom, width: Math.max(3, stepWidth) });
    const area = el("rect", { class: "hover-area", x: P.left - stepWidth / 2, width: plotWidth + stepWidth, y: P.top, height: P.height - P.top - P.bottom });
    area.addEventListener("mousemove", (e) => link(stepAt(e)));
    area.addEventListener("mouseleave", () => link(null));
    area.addEventListener("click", (e) => { stop(); slider.value = String(stepAt(e)); show(); });
    cursor = el("line", { class: "cursor", y1: P.top, y2: P.height - P.bottom });
    marker = el("g", { class: "markers" });
  }
  // Where step t sits on the plot, in page coordinates (for tests and tools).
  function plotPoint(t) {
    const point = plot.createSVGPoint();
    point.x = xOf(t);
    point.y = (P.top + P.height - P.bottom) / 2;
    const p = point.matrixTransform(plot.getScreenCTM());
    return [p.x, p.y];
  }
  function drawCursor(t, forward) {
    cursor.setAttribute("x1", xOf(t));
    cursor.setAttribute("x2", xOf(t));
    const from = forward ? xOf(t) : P.left;
    const to = forward ? P.width - P.right : xOf(t);
    unreached.setAttribute("x", from);
    unreached.setAttribute("width", Math.max(0, to - from));
  }
  // Hovering a step (in the plot, or a node copy in a diagram) marks it in both.
  function link(t) {
    band.classList.toggle("linked", t !== null);
    band.setAttribute("data-step", t === null ? "" : String(t));
    if (t !== null) band.setAttribute("x", xOf(t) - Math.max(3, stepWidth) / 2);
    markSteps("linked", t);
    copies.forEach((c) => c.g.classList.toggle("linked", t !== null && c.step === t));
    marker.innerHTML = "";
    document.body.dataset.linked = t === null ? "" : String(t);
    if (t === null) return;
    data.runs.forEach((run, r) => run.states.forEach((state) => {
      const v = run.norms[state][t];
      if (typeof v === "number") el("circle", { cx: xOf(t), cy: yOf(v), r: 4, fill: MODEL_COLOURS[r % MODEL_COLOURS.length] }, marker);
    }));
  }

  // ---- the legend ----------------------------------------------------------------------------
  function drawLegend() {
    const legend = document.getElementById("legend");
    const bar = `linear-gradient(to right, ${scale.stops.join(", ")})`;
    const ticks = [];
    const stride = Math.max(1, Math.ceil((scale.high - scale.low) / 8));
    for (let d = scale.low; d <= scale.high; d += stride) {
      ticks.push(`<span style="left:${(100 * (d - scale.low)) / (scale.high - scale.low)}%">${d}</span>`);
    }
    legend.innerHTML = `<span>log<sub>10</sub> ‖dL/dv‖ of each copy:</span><div><div class="bar" style="background:${bar}"></div>` +
      `<div class="ticks">${ticks.join("")}</div></div><span><span class="zero" style="background:${scale.zero}"></span> exactly 0</span>`;
  }

  // ---- wiring --------------------------------------------------------------------------------
  slider.addEventListener("input", () => { stop(); show(); });
  document.querySelectorAll('input[name="pass"]').forEach((r) => r.addEventListener("change", () => {
    stop();
    slider.value = r.value === "forward" ? "0" : String(last);
    show();
  }));
  playButton.addEventListener("click", play);
  // Fit every diagram to the page (one time axis), or draw them at graphviz's size.
  document.getElementById("actual-size").addEventListener("change", (e) => {
    document.body.classList.toggle("actual-size", e.target.checked);
    document.querySelectorAll(".diagram svg").forEach((svg) => {
      svg.setAttribute("width", e.target.checked ? svg.dataset.width : "100%");
    });
  });
  document.addEventListener("keydown", (e) => {
    // Space plays and pauses anywhere but on a button (which clicks itself with space).
    if (e.key !== " " || e.target.tagName === "BUTTON") return;
    e.preventDefault();
    play();
  });
  drawLegend();
  drawAxes();
  drawCurves();
  drawColumns();
  show();
  window.unrollExplorer = { ready: true, readyAt: performance.now(), copies: copies.length, plotPoint };
  document.body.dataset.ready = "true";
})();
