// The Cost tab's roofline of one run: where the time of a training step goes.
//
// Log-log: arithmetic intensity (training FLOPs per byte moved) across, attainable FLOP/s up. The device's two
// roofs meet at the ridge point (peak FLOP/s / memory bandwidth): left of it a pass is bound by memory (FLOP/s =
// bandwidth x intensity), right of it by compute (the peak). Each block of the model is a point at its
// intensity and its predicted FLOP/s (FLOPs / predicted seconds), its area proportional to its predicted
// time, coloured by its bound; the run's measured point is its achieved FLOP/s at the model's intensity.
// The data: the cost document's "roofline" and "by_kind" (written by nns_callbacks.panels), which documents of
// older runs lack.

import { el, formatBytes, formatCount, formatFlopsPerSec, formatPercent, formatSeconds, isNumber, latestValue, other, svg } from "./index.js";

const BOUND_COLORS = { compute: "#1e88e5", memory: "#e53935" };
const KIND_TITLES = { attention: "attention", mlp: "MLP", normalization: "normalisation", embedding: "embedding", convolution: "convolution", other: "other" };

const formatIntensity = (value) => formatCount(value, "FLOP/B");
const formatBandwidth = (value) => formatCount(value, "B/s");

function decades(low, high) {
  const ticks = [];
  for (let e = Math.floor(Math.log10(low)); e <= Math.ceil(Math.log10(high)); e++) ticks.push(10 ** e);
  return ticks;
}

function logScale(low, high, from, to) {
  const [a, b] = [Math.log10(low), Math.log10(high)];
  return (v) => from + ((Math.log10(v) - a) / (b - a || 1)) * (to - from);
}

function rooflineChart(roofline, measured) {
  // roofline: the document's "roofline"; measured: achieved FLOP/s of the run, or null.
  const [width, height] = [640, 360];
  const pad = { left: 84, right: 20, top: 26, bottom: 40 };
  const peak = roofline.peak_flops_per_sec;
  const bandwidth = roofline.memory_bandwidth;
  const ridge = peak / bandwidth;
  const points = (roofline.points || []).filter((p) => isNumber(p.arithmetic_intensity) && p.arithmetic_intensity > 0 && isNumber(p.seconds) && p.seconds > 0 && p.training_flops > 0);
  const xs = [ridge, ...points.map((p) => p.arithmetic_intensity)];
  if (isNumber(roofline.arithmetic_intensity) && roofline.arithmetic_intensity > 0) xs.push(roofline.arithmetic_intensity);
  const x0 = 10 ** Math.floor(Math.log10(Math.min(...xs) / 2));
  const x1 = 10 ** Math.ceil(Math.log10(Math.max(...xs) * 2));
  const ys = [peak, bandwidth * x0, ...points.map((p) => p.training_flops / p.seconds)];
  if (isNumber(measured) && measured > 0) ys.push(measured);
  const y0 = 10 ** Math.floor(Math.log10(Math.min(...ys) / 2));
  const y1 = 10 ** Math.ceil(Math.log10(peak * 2));
  const x = logScale(x0, x1, pad.left, width - pad.right);
  const y = logScale(y0, y1, height - pad.bottom, pad.top);
  const chart = svg("svg", { class: "roofline", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "roofline" });
  for (const tick of decades(x0, x1)) {
    chart.append(svg("line", { class: "grid", x1: x(tick), x2: x(tick), y1: pad.top, y2: height - pad.bottom }));
    chart.append(svg("text", { class: "x-tick", x: x(tick), y: height - pad.bottom + 14, "text-anchor": "middle" }, formatCount(tick)));
  }
  for (const tick of decades(y0, y1)) {
    chart.append(svg("line", { class: "grid", x1: pad.left, x2: width - pad.right, y1: y(tick), y2: y(tick) }));
    chart.append(svg("text", { class: "y-tick", x: pad.left - 6, y: y(tick) + 4, "text-anchor": "end" }, formatFlopsPerSec(tick)));
  }
  chart.append(svg("text", { class: "axis-title", x: (pad.left + width - pad.right) / 2, y: height - 4, "text-anchor": "middle" },
    "arithmetic intensity: training FLOPs per byte moved (log)"));
  chart.append(svg("text", { class: "axis-title", x: pad.left, y: 12, "text-anchor": "start" }, "attainable FLOP/s (log)"));
  // The roofs: memory up to the ridge point, compute after it.
  const roof = (kind, xa, xb, ya, yb, label, at) => {
    chart.append(svg("line", { class: "roof", "data-roof": kind, x1: x(xa), x2: x(xb), y1: y(ya), y2: y(yb), stroke: BOUND_COLORS[kind], "stroke-width": 2.5 }));
    chart.append(svg("text", { class: "roof-label", "data-roof": kind, x: at[0], y: at[1], "text-anchor": "end" }, label));
  };
  const middle = Math.sqrt(x0 * ridge); // halfway up the memory roof, in log space
  roof("memory", x0, ridge, bandwidth * x0, peak, `memory: ${formatBandwidth(bandwidth)}`, [x(middle) - 6, y(bandwidth * middle) - 8]);
  roof("compute", ridge, x1, peak, peak, `peak: ${formatFlopsPerSec(peak)}`, [x(x1) - 6, y(peak) - 6]);
  chart.append(svg("line", { class: "ridge", x1: x(ridge), x2: x(ridge), y1: y(peak), y2: height - pad.bottom, stroke: "var(--muted)", "stroke-dasharray": "3 3" }));
  chart.append(svg("text", { class: "ridge-label", x: x(ridge) + 4, y: height - pad.bottom - 6 }, `ridge ${formatIntensity(ridge)}`));
  // The blocks: area proportional to predicted time.
  const largest = Math.max(...points.map((p) => p.seconds), 0);
  for (const point of [...points].sort((a, b) => b.seconds - a.seconds)) {
    const flops = point.training_flops / point.seconds;
    const radius = 3 + 13 * Math.sqrt(point.seconds / largest);
    const dot = svg("circle", { class: "point", "data-name": point.block, "data-bound": point.bound, cx: x(point.arithmetic_intensity), cy: y(flops),
      r: radius.toFixed(1), fill: BOUND_COLORS[point.bound] || "var(--muted)", "fill-opacity": 0.45, stroke: BOUND_COLORS[point.bound] || "var(--muted)" });
    dot.append(svg("title", {}, `${point.block}: ${formatIntensity(point.arithmetic_intensity)}, ${formatFlopsPerSec(flops)} predicted, ` +
      `${formatSeconds(point.seconds)} (${formatPercent(point.share)} of the step), ${point.bound}-bound`));
    chart.append(dot);
  }
  if (isNumber(measured) && measured > 0 && isNumber(roofline.arithmetic_intensity)) {
    const [cx, cy] = [x(roofline.arithmetic_intensity), y(measured)];
    const mark = svg("g", { class: "measured" });
    mark.append(svg("circle", { class: "measured", cx, cy, r: 6, fill: "none", stroke: "var(--fg)", "stroke-width": 2.5 }));
    mark.append(svg("text", { class: "measured-label", x: cx + 9, y: cy + 4 }, `measured: ${formatFlopsPerSec(measured)}`));
    mark.append(svg("title", {}, `the run's achieved FLOP/s (latest epoch) at the model's ${formatIntensity(roofline.arithmetic_intensity)}`));
    chart.append(mark);
  }
  return chart;
}

const shortName = (name) => (String(name).length > 40 ? `…${String(name).slice(-39)}` : other(name));

function topTable(roofline) {
  const rows = roofline.top || [];
  const head = ["layer", "type", "predicted time", "share of the step", "bound", "intensity", "FLOPs", "bytes moved"];
  return el("table", { class: "roofline-top", "data-testid": "roofline-top" },
    el("thead", {}, el("tr", {}, head.map((h, i) => el("th", { class: i > 1 ? "num" : "" }, h)))),
    el("tbody", {}, rows.map((r) => el("tr", { "data-bound": r.bound },
      el("td", { title: other(r.name) }, shortName(r.name)), el("td", {}, other(r.type)), el("td", { class: "num" }, formatSeconds(r.seconds)),
      el("td", { class: "num" }, formatPercent(r.share)),
      el("td", { class: "num" }, el("span", { style: `color: ${BOUND_COLORS[r.bound] || "inherit"}` }, other(r.bound))),
      el("td", { class: "num" }, formatIntensity(r.arithmetic_intensity)), el("td", { class: "num" }, formatCount(r.training_flops, "FLOP")),
      el("td", { class: "num" }, formatBytes(r.training_bytes_moved))))));
}

// "attention 42%, MLP 30%, ...": shares of the predicted time where there is a roofline, else of training FLOPs.
export function kindSummary(costDoc) {
  const kinds = Array.isArray(costDoc.by_kind) ? costDoc.by_kind : [];
  if (!kinds.length) return null;
  const timed = kinds.every((k) => isNumber(k.seconds));
  const total = kinds.reduce((sum, k) => sum + (timed ? k.seconds : k.training_flops || 0), 0);
  const share = (k) => (total ? (timed ? k.seconds : k.training_flops || 0) / total : null);
  const sorted = [...kinds].sort((a, b) => share(b) - share(a));
  const words = sorted.map((k) => `${KIND_TITLES[k.kind] || k.kind} ${formatPercent(share(k))}`).join(", ");
  const head = ["kind", "rows", timed ? "predicted time" : null, "share", "training FLOPs", "bytes moved", "params", "activations kept"].filter(Boolean);
  const table = el("table", { class: "by-kind" },
    el("thead", {}, el("tr", {}, head.map((h, i) => el("th", { class: i ? "num" : "" }, h)))),
    el("tbody", {}, sorted.map((k) => el("tr", { "data-kind": k.kind },
      [el("td", {}, KIND_TITLES[k.kind] || other(k.kind)), el("td", { class: "num" }, other(k.rows)),
        timed ? el("td", { class: "num" }, formatSeconds(k.seconds)) : null, el("td", { class: "num" }, formatPercent(share(k))),
        el("td", { class: "num" }, formatCount(k.training_flops, "FLOP")), el("td", { class: "num" }, formatBytes(k.training_bytes_moved)),
        el("td", { class: "num" }, formatCount(k.params)), el("td", { class: "num" }, formatBytes(k.activation_bytes))].filter(Boolean)))));
  return el("div", { "data-testid": "by-kind" },
    el("h3", {}, `By kind (share of the ${timed ? "predicted step time" : "training FLOPs"})`),
    el("p", { class: "kind-words" }, words), el("div", { class: "wrap" }, table));
}

export function rooflineSection(costDoc, throughput) {
  const roofline = costDoc.roofline;
  const parts = [el("h3", {}, "Where the time goes: the roofline")];
  if (!roofline || typeof roofline !== "object" || !isNumber(roofline.peak_flops_per_sec) || !isNumber(roofline.memory_bandwidth)) {
    const why = !("training_bytes_moved" in costDoc)
      ? "this run's cost model has no bytes moved (written by an older nns_callbacks)"
      : "its peak FLOP/s or its memory bandwidth is unknown: pass NNSCallback(peak_flops=..., memory_bandwidth=...) or 'measure'";
    parts.push(el("p", { class: "muted", "data-testid": "no-roofline" }, `No roofline: ${why}.`));
  } else {
    const tflops = latestValue(throughput, "epoch_tflops_per_sec");
    const measured = isNumber(tflops) ? tflops * 1e12 : null;
    const fraction = latestValue(throughput, "epoch_roofline_fraction");
    const bound = roofline.bound_seconds || {};
    const lines = [
      `Predicted step: ${formatSeconds(roofline.step_seconds)} (${formatSeconds(bound.compute)} in compute-bound passes, ${formatSeconds(bound.memory)} in memory-bound ones)`,
      isNumber(fraction) ? `, ${formatPercent(fraction)} of the measured steady step.` : ".",
      ` Ridge point ${formatIntensity(roofline.ridge_point)}; the model's intensity ${formatIntensity(roofline.arithmetic_intensity)}.`,
      roofline.blocks > (roofline.points || []).length ? ` Points: the ${(roofline.points || []).length} of ${roofline.blocks} blocks with most predicted time.` : "",
    ];
    parts.push(el("p", { "data-testid": "roofline-figures" }, lines.join("")));
    const chart = el("div", { class: "chart", "data-testid": "roofline" }, rooflineChart(roofline, measured),
      el("div", { class: "legend" }, Object.entries(BOUND_COLORS).map(([k, c]) => el("span", {}, el("span", { class: "swatch", style: `background:${c}` }), `${k}-bound`)),
        el("span", {}, "○ measured (achieved FLOP/s)"), el("span", { class: "muted" }, `points: blocks at depth ${roofline.depth}, area ∝ predicted time`)));
    const top = el("div", {}, el("div", { class: "title" }, "Rows with the most predicted time"), el("div", { class: "wrap" }, topTable(roofline)));
    parts.push(el("div", { class: "charts" }, chart), top);
  }
  const kinds = kindSummary(costDoc);
  if (kinds) parts.push(kinds);
  return el("div", { class: "roofline-section", "data-testid": "roofline-section" }, parts);
}
