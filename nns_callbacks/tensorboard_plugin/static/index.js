// The Cost tab of the nns TensorBoard plugin: one static ES module, no build step, no network but
// TensorBoard's own routes (relative to <base href="plugin/nns/">).
//
// Units: a MAC is one multiply-add, a FLOP one floating-point operation (a MAC is 2 FLOPs);
// memory in binary units (KiB, MiB, GiB).

const MAX_SELECTED = 2;
const TOP_LAYERS = 12;
const ROW_LIMIT = 300;
const SVG = "http://www.w3.org/2000/svg";

const STYLE = `
  body { font-family: Roboto, "Helvetica Neue", Arial, sans-serif; font-size: 13px; color: #212121;
         margin: 0; padding: 16px 24px; background: #fff; }
  h1 { font-size: 18px; font-weight: 500; margin: 0 0 4px; }
  h2 { font-size: 16px; font-weight: 500; margin: 28px 0 8px; border-top: 1px solid #e0e0e0; padding-top: 16px; }
  h3 { font-size: 13px; font-weight: 500; margin: 16px 0 6px; color: #424242; }
  .muted { color: #757575; }
  .runs label { margin-right: 16px; white-space: nowrap; }
  .toolbar { display: flex; gap: 16px; align-items: center; flex-wrap: wrap; margin: 8px 0; }
  table { border-collapse: collapse; }
  th, td { padding: 3px 10px; border-bottom: 1px solid #eee; white-space: nowrap; }
  th { text-align: left; font-weight: 500; color: #424242; background: #fafafa; position: sticky; top: 0; }
  td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
  table.compare td:first-child { color: #616161; }
  table.layers th { cursor: pointer; user-select: none; }
  table.layers th.sorted::after { content: attr(data-arrow); color: #f57c00; }
  .scroll { max-height: 560px; overflow: auto; border: 1px solid #e0e0e0; }
  .share { display: inline-block; height: 10px; background: #ff9800; vertical-align: middle; margin-right: 6px; }
  .charts { display: flex; flex-wrap: wrap; gap: 16px; }
  .chart { border: 1px solid #e0e0e0; padding: 6px 8px; }
  .chart .title { font-weight: 500; margin-bottom: 2px; }
  .legend span { margin-right: 12px; }
  .no { color: #c62828; font-weight: 500; }
  .warn { color: #e65100; }
  input[type=search] { padding: 4px 6px; width: 260px; }
`;

// Formatting: three significant digits, like nns_callbacks.cost.format_count / format_bytes.

function threeDigits(value) {
  const text = value.toPrecision(3);
  return text.includes("e") ? value.toFixed(0) : String(Number(text));
}

function formatCount(value, unit = "") {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  const rounded = Number(value.toPrecision(3));
  for (const [prefix, scale] of [["T", 1e12], ["G", 1e9], ["M", 1e6], ["k", 1e3]]) {
    if (Math.abs(rounded) >= scale) return `${threeDigits(rounded / scale)} ${prefix}${unit}`;
  }
  return `${Number(value.toPrecision(4))} ${unit}`.trim();
}

function formatBytes(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  for (const [unit, scale] of [["GiB", 2 ** 30], ["MiB", 2 ** 20], ["KiB", 2 ** 10]]) {
    if (Math.abs(value) >= scale) return `${threeDigits(value / scale)} ${unit}`;
  }
  return `${Math.round(value)} B`;
}

const formatInteger = (value) => Number(value).toLocaleString("en-US");
function formatPercent(value) {
  if (value === null || value === undefined) return "–";
  const percent = 100 * value;
  return percent !== 0 && Math.abs(percent) < 0.1 ? `${percent.toPrecision(2)}%` : `${percent.toFixed(1)}%`;
}

// DOM helpers.

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function svg(tag, attributes = {}, text = null) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (text !== null) node.textContent = text;
  return node;
}

async function getJson(route) {
  const response = await fetch(route);
  if (!response.ok) throw new Error(`${route}: HTTP ${response.status}`);
  return response.json();
}

// The figures of the header, one row each; a function of (document, throughput) per run.

function latest(series, tag) {
  const points = series && series[tag];
  return points && points.length ? points[points.length - 1][1] : null;
}

const HEADER_ROWS = [
  ["model", (d) => d.model],
  ["batch size (samples per step)", (d) => formatInteger(d.batch_size)],
  ["dtype policy", (d) => d.dtype_policy],
  ["optimizer", (d) => d.optimizer],
  ["parameters (trainable)", (d) => `${formatInteger(d.params)} (${formatInteger(d.trainable_params)})`],
  ["forward MACs per sample", (d) => formatCount(d.forward_macs_per_sample, "MAC")],
  ["forward FLOPs per sample", (d) => formatCount(d.forward_flops_per_sample, "FLOP")],
  ["training FLOPs per sample", (d) => formatCount(d.training_flops_per_sample, "FLOP")],
  ["training FLOPs per step", (d) => formatCount(d.training_flops, "FLOP")],
  ["memory: weights", (d) => formatBytes(d.weight_bytes)],
  ["memory: gradients", (d) => formatBytes(d.gradient_bytes)],
  ["memory: optimizer state", (d) => formatBytes(d.optimizer_bytes)],
  ["memory: activations kept", (d) => formatBytes(d.activation_bytes)],
  ["memory: training step (estimate, the sum)", (d) => formatBytes(d.training_bytes)],
  ["measured peak device memory", (d, t) => peakMemory(t)],
  ["peak FLOP/s behind MFU", (d) => peakText(d.peak)],
  ["latest samples/s (training)", (d, t) => formatCount(latest(t.train, "epoch_samples_per_sec"))],
  ["latest achieved FLOP/s (training)", (d, t) => tflops(latest(t.train, "epoch_tflops_per_sec"))],
  ["latest MFU (training)", (d, t) => formatPercent(latest(t.train, "epoch_mfu"))],
  ["not counted (cost 0)", (d) => unsupportedText(d.unsupported)],
];

function peakMemory(throughput) {
  const bytes = latest(throughput.train, "epoch_peak_memory_bytes");
  if (bytes === null) return "–";
  const ratio = latest(throughput.train, "epoch_peak_memory_over_estimate");
  return ratio === null ? formatBytes(bytes) : `${formatBytes(bytes)} (${ratio.toFixed(2)} x estimate)`;
}

function tflops(value) {
  return value === null ? "–" : formatCount(value * 1e12, "FLOP/s");
}

function peakText(peak) {
  if (!peak) return "unknown: no MFU";
  return `${formatCount(peak.flops_per_sec, "FLOP/s")} (${peak.devices} x ${peak.device}, ${peak.precision}; ${peak.source})`;
}

function unsupportedText(unsupported) {
  const entries = Object.entries(unsupported || {});
  if (!entries.length) return "nothing";
  return el("span", { class: "no" }, entries.map(([name, count]) => `${name} x${count}`).join(", "));
}

function compareTable(runs) {
  const head = el("tr", {}, el("th", {}, ""), runs.map((r) => el("th", {}, r.run)));
  const rows = HEADER_ROWS.map(([label, cell]) =>
    el("tr", {}, el("td", {}, label), runs.map((r) => el("td", { class: "num" }, cell(r.costDoc, r.throughput)))),
  );
  return el("table", { class: "compare", "data-testid": "header" }, el("thead", {}, head), el("tbody", {}, rows));
}

// The per-layer table: human units, share bars, sorting and filtering.

const LAYER_COLUMNS = [
  { key: "name", title: "layer", text: (v) => v },
  { key: "type", title: "type", text: (v) => v },
  { key: "output_shape", title: "output shape", text: (v) => v },
  { key: "params", title: "params", text: formatInteger, num: true },
  { key: "forward_macs", title: "forward MACs", text: (v) => formatCount(v, "MAC"), num: true },
  { key: "training_flops", title: "training FLOPs", text: (v) => formatCount(v, "FLOP"), num: true },
  { key: "training_flops_share", title: "share of training FLOPs", share: true, num: true },
  { key: "activation_bytes", title: "activations kept", text: formatBytes, num: true },
  { key: "counted", title: "counted", text: (v) => (v ? "yes" : el("span", { class: "no" }, "no")) },
];

function shareCell(value, largest) {
  const width = largest > 0 ? Math.round((80 * value) / largest) : 0;
  return [el("span", { class: "share", style: `width:${width}px` }), formatPercent(value)];
}

function layersSection(costDoc) {
  const rows = costDoc.layers;
  const largestShare = Math.max(0, ...rows.map((r) => r.training_flops_share || 0));
  const state = { key: null, descending: true, filter: "" };
  const body = el("tbody");
  const count = el("span", { class: "muted" });
  const headers = LAYER_COLUMNS.map((column) =>
    el("th", { class: column.num ? "num" : "", "data-key": column.key, onclick: () => sortBy(column.key) }, column.title),
  );

  function sortBy(key) {
    state.descending = state.key === key ? !state.descending : key !== "name" && key !== "type";
    state.key = key;
    draw();
  }

  function visibleRows() {
    const needle = state.filter.trim().toLowerCase();
    let shown = rows.filter((r) => !needle || r.name.toLowerCase().includes(needle) || r.type.toLowerCase().includes(needle));
    if (state.key) {
      const sign = state.descending ? -1 : 1;
      shown = [...shown].sort((a, b) => sign * (a[state.key] > b[state.key] ? 1 : a[state.key] < b[state.key] ? -1 : 0));
    }
    return shown;
  }

  function draw() {
    const shown = visibleRows();
    body.replaceChildren(
      ...shown.slice(0, ROW_LIMIT).map((row) =>
        el(
          "tr",
          {},
          LAYER_COLUMNS.map((c) =>
            el("td", { class: c.num ? "num" : "" }, c.share ? shareCell(row[c.key], largestShare) : c.text(row[c.key])),
          ),
        ),
      ),
    );
    const limited = shown.length > ROW_LIMIT ? `, the first ${ROW_LIMIT} shown` : "";
    count.textContent = `${shown.length} of ${rows.length} rows${limited}`;
    for (const th of headers) {
      const sorted = th.dataset.key === state.key;
      th.classList.toggle("sorted", sorted);
      th.dataset.arrow = sorted ? (state.descending ? " ▼" : " ▲") : "";
    }
  }

  const filter = el("input", { type: "search", placeholder: "filter by layer name or type" });
  filter.addEventListener("input", () => {
    state.filter = filter.value;
    draw();
  });
  draw();
  return el(
    "div",
    {},
    el("h3", {}, "Layers (click a heading to sort)"),
    el("div", { class: "toolbar" }, filter, count),
    el("div", { class: "scroll" }, el("table", { class: "layers" }, el("thead", {}, el("tr", {}, headers)), body)),
  );
}

// Charts in SVG: the costliest layers, and rates over steps.

function topLayers(rows, n = TOP_LAYERS) {
  return [...rows].sort((a, b) => b.training_flops - a.training_flops).slice(0, n).filter((r) => r.training_flops > 0);
}

function topLayersChart(costDoc) {
  const top = topLayers(costDoc.layers);
  const labelWidth = 260;
  const barWidth = 420;
  const rowHeight = 22;
  const height = top.length * rowHeight + 8;
  const largest = top.length ? top[0].training_flops : 1;
  const chart = svg("svg", { width: labelWidth + barWidth + 150, height, role: "img" });
  top.forEach((row, i) => {
    const y = 4 + i * rowHeight;
    const width = Math.max(1, (barWidth * row.training_flops) / largest);
    const name = row.name.length > 38 ? `…${row.name.slice(-37)}` : row.name;
    chart.append(svg("text", { x: labelWidth - 8, y: y + 15, "text-anchor": "end", "font-size": 12 }, name));
    chart.append(svg("rect", { x: labelWidth, y: y + 3, width, height: rowHeight - 6, fill: "#ff9800" }));
    const label = `${formatCount(row.training_flops, "FLOP")} (${formatPercent(row.training_flops_share)})`;
    chart.append(svg("text", { x: labelWidth + width + 6, y: y + 15, "font-size": 12 }, label));
  });
  return el("div", {}, el("h3", {}, `Top ${top.length} layers by training FLOPs per step`), chart);
}

function lineChart(title, axis, lines, format) {
  const width = 380;
  const height = 170;
  const pad = { left: 92, right: 12, top: 10, bottom: 28 };
  const points = lines.flatMap((line) => line.points);
  const box = el("div", { class: "chart" }, el("div", { class: "title" }, title));
  if (!points.length) {
    box.append(el("div", { class: "muted" }, "no data yet"));
    return box;
  }
  const steps = points.map((p) => p[0]);
  const values = points.map((p) => p[1]);
  const [x0, x1] = [Math.min(...steps), Math.max(...steps)];
  const [y0, y1] = [Math.min(0, ...values), Math.max(...values) || 1];
  const plotWidth = width - pad.left - pad.right;
  const x = (s) => pad.left + (x1 > x0 ? ((s - x0) / (x1 - x0)) * plotWidth : plotWidth / 2);
  const y = (v) => height - pad.bottom - ((v - y0) / (y1 - y0 || 1)) * (height - pad.top - pad.bottom);
  const chart = svg("svg", { width, height, role: "img" });
  chart.append(svg("line", { x1: pad.left, x2: width - pad.right, y1: y(y0), y2: y(y0), stroke: "#bdbdbd" }));
  chart.append(svg("text", { x: pad.left - 6, y: y(y1) + 4, "text-anchor": "end", "font-size": 11 }, format(y1)));
  chart.append(svg("text", { x: pad.left - 6, y: y(y0) + 4, "text-anchor": "end", "font-size": 11 }, format(y0)));
  chart.append(svg("text", { x: pad.left, y: height - 8, "font-size": 11 }, `${axis} ${x0}`));
  chart.append(svg("text", { x: width - pad.right, y: height - 8, "text-anchor": "end", "font-size": 11 }, `${axis} ${x1}`));
  for (const line of lines) {
    if (!line.points.length) continue;
    const path = line.points.map((p, i) => `${i ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" ");
    chart.append(svg("path", { d: path, fill: "none", stroke: line.color, "stroke-width": 2 }));
    for (const p of line.points) chart.append(svg("circle", { cx: x(p[0]), cy: y(p[1]), r: 2.5, fill: line.color }));
  }
  const legend = el("div", { class: "legend muted" }, lines.filter((l) => l.points.length).map((l) =>
    el("span", { style: `color:${l.color}` }, `— ${l.name} (latest ${format(l.points[l.points.length - 1][1])})`),
  ));
  box.append(chart, legend);
  return box;
}

const RATE_CHARTS = [
  ["samples/s", "samples_per_sec", (v) => formatCount(v)],
  ["achieved FLOP/s", "tflops_per_sec", (v) => formatCount(v * 1e12, "FLOP/s")],
  ["MFU (achieved / peak FLOP/s)", "mfu", formatPercent],
];

function throughputSection(throughput) {
  const series = (run, tag) => (throughput[run] && throughput[run][tag]) || [];
  const perEpoch = RATE_CHARTS.map(([title, name, format]) =>
    lineChart(`${title} per epoch`, "epoch", [
      { name: "training", color: "#f57c00", points: series("train", `epoch_${name}`) },
      { name: "validation", color: "#1976d2", points: series("validation", `epoch_${name}`) },
    ], format),
  );
  const windows = RATE_CHARTS.filter(([, name]) => series("train", `batch_${name}`).length).map(([title, name, format]) =>
    lineChart(`${title} per window of steps`, "step", [
      { name: "training", color: "#f57c00", points: series("train", `batch_${name}`) },
    ], format),
  );
  return el("div", {}, el("h3", {}, "Throughput"), el("div", { class: "charts" }, perEpoch, windows));
}

// The page.

function runSection(run) {
  return el(
    "section",
    { "data-run": run.run },
    el("h2", {}, `${run.costDoc.model} `, el("span", { class: "muted" }, `run ${run.run}, written at step ${run.costDoc.step}`)),
    throughputSection(run.throughput),
    topLayersChart(run.costDoc),
    layersSection(run.costDoc),
  );
}

async function loadRun(run) {
  const query = `?run=${encodeURIComponent(run)}`;
  const [costDoc, throughput] = await Promise.all([getJson(`layers${query}`), getJson(`throughput${query}`)]);
  return { run, costDoc, throughput };
}

export async function render() {
  document.head.append(el("style", {}, STYLE));
  const root = el("div", { id: "nns-root" });
  document.body.append(root);
  let runs;
  try {
    runs = await getJson("runs");
  } catch (error) {
    root.append(el("p", { class: "no" }, `Could not read the runs: ${error.message}`));
    return;
  }
  const selected = new Set(runs.slice(0, MAX_SELECTED).map((r) => r.run));
  const content = el("div");
  const chooser = el(
    "div",
    { class: "runs" },
    el("span", { class: "muted" }, "Runs: "),
    runs.map((r) => {
      const box = el("input", { type: "checkbox", value: r.run });
      box.checked = selected.has(r.run);
      box.addEventListener("change", () => {
        box.checked ? selected.add(r.run) : selected.delete(r.run);
        show();
      });
      return el("label", {}, box, ` ${r.run} (${r.model}, batch ${r.batch_size})`);
    }),
  );
  const reload = el("button", { onclick: () => show() }, "Reload");
  root.append(
    el("h1", {}, "What the model costs, and how much of the hardware it uses"),
    el("div", { class: "muted" }, "A MAC is one multiply-add; a FLOP is one floating-point operation (a MAC is 2 FLOPs). Papers call MACs \u201cFLOPs\u201d."),
    el("div", { class: "toolbar" }, chooser, reload),
    content,
  );

  async function show() {
    const chosen = runs.filter((r) => selected.has(r.run));
    if (!chosen.length) {
      content.replaceChildren(el("p", { class: "muted" }, runs.length ? "Tick a run to show it." : "No run holds a cost model yet: train with NNSCallback(log_dir=...)."));
      return;
    }
    try {
      const loaded = await Promise.all(chosen.map((r) => loadRun(r.run)));
      content.replaceChildren(el("h3", {}, "Summary"), compareTable(loaded), ...loaded.map(runSection));
    } catch (error) {
      content.replaceChildren(el("p", { class: "no" }, `Could not read a run: ${error.message}`));
    }
  }
  await show();
}
