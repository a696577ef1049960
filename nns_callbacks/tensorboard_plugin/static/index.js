// The Cost tab of the nns TensorBoard plugin: one static ES module, no build step, no network but
// TensorBoard's own routes (relative to <base href="plugin/nns/">).
//
// The page compares runs: one row per run in a table (with ratios to a baseline run), charts that overlay
// the runs per epoch, one colour per run everywhere; below, one run's details (per-layer table, top layers).
//
// Units: a MAC is one multiply-add, a FLOP one floating-point operation (a MAC is 2 FLOPs);
// memory in binary units (KiB, MiB, GiB). Epochs are shown 1-based, as Keras prints them; the stored
// step axis of the epoch_* scalars is the 0-based epoch index.

import { rooflineSection } from "./roofline.js";

const TOP_LAYERS = 12;
const ROW_LIMIT = 300;
const POLL_MS = 30_000;
const SVG = "http://www.w3.org/2000/svg";

const STYLE = `
  :root { --fg: #212121; --bg: #fff; --muted: #757575; --line: #e0e0e0; --faint: #f0f0f0; --head: #fafafa;
          --accent: #f57c00; --bad: #c62828; --warn: #e65100; --good: #2e7d32; --base: #fff3e0; color-scheme: light; }
  body.dark { --fg: #e0e0e0; --bg: #202124; --muted: #9aa0a6; --line: #3c4043; --faint: #2d2e31; --head: #292a2d;
              --accent: #ffa726; --bad: #ef5350; --warn: #ffb74d; --good: #81c784; --base: #3e2f1c; color-scheme: dark; }
  body { font-family: Roboto, "Helvetica Neue", Arial, sans-serif; font-size: 13px; color: var(--fg);
         margin: 0; padding: 12px 20px; background: var(--bg); box-sizing: border-box; }
  h1 { font-size: 18px; font-weight: 500; margin: 0 0 2px; }
  h2 { font-size: 15px; font-weight: 500; margin: 22px 0 8px; border-top: 1px solid var(--line); padding-top: 12px;
       display: flex; gap: 12px; align-items: center; flex-wrap: wrap; }
  h3 { font-size: 13px; font-weight: 500; margin: 14px 0 6px; }
  .muted { color: var(--muted); }
  .toolbar { display: flex; gap: 8px 18px; align-items: center; flex-wrap: wrap; margin: 8px 0; }
  .runs { display: flex; flex-wrap: wrap; gap: 2px 14px; max-height: 7.5em; overflow-y: auto; padding: 4px 6px;
          border: 1px solid var(--line); }
  .runs label { white-space: nowrap; }
  .swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin: 0 4px; vertical-align: -1px; }
  input, select, button { font: inherit; color: inherit; background: var(--bg); border: 1px solid var(--line);
                          border-radius: 3px; padding: 2px 6px; }
  input[type=checkbox], input[type=radio] { padding: 0; accent-color: var(--accent); }
  input.invalid { border-color: var(--bad); }
  button { cursor: pointer; }
  table { border-collapse: collapse; }
  th, td { padding: 2px 7px; border-bottom: 1px solid var(--faint); white-space: nowrap; }
  th { text-align: left; font-weight: 500; background: var(--head); vertical-align: bottom; }
  td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
  .wrap { overflow-x: auto; max-width: 100%; border: 1px solid var(--line); }
  table.compare { font-size: 12px; }
  table.compare th { white-space: normal; min-width: 40px; max-width: 84px; cursor: pointer; user-select: none; }
  table.compare th, table.compare td { padding: 2px 5px; }
  table.compare .source { max-width: 150px; overflow: hidden; text-overflow: ellipsis; margin-left: auto; }
  table.compare th.sorted::after, table.layers th.sorted::after { content: attr(data-arrow); color: var(--accent); }
  table.compare td.run, table.compare th.run { position: sticky; left: 0; background: var(--bg); z-index: 1;
                                               max-width: 210px; overflow: hidden; text-overflow: ellipsis; }
  table.compare th.run { background: var(--head); }
  table.compare td.run { cursor: pointer; }
  table.compare tr.baseline td { background: var(--base); font-weight: 500; }
  table.compare tr.details td.run { text-decoration: underline; }
  table.compare .ratio { font-size: 11px; color: var(--muted); font-weight: 400; }
  table.compare .ratio.up { color: var(--good); }
  table.compare .ratio.down { color: var(--warn); }
  td.state { max-width: 150px; overflow: hidden; text-overflow: ellipsis; }
  .state-running { color: var(--good); font-weight: 500; }
  .state-interrupted { color: var(--bad); font-weight: 500; }
  .state-unknown { color: var(--muted); }
  .differs { color: var(--warn); font-weight: 500; }
  .notes { margin: 6px 0; padding-left: 18px; }
  .notes li { margin: 2px 0; }
  .notice { border-left: 3px solid var(--warn); padding: 4px 10px; margin: 8px 0; background: var(--faint); }
  table.layers th { cursor: pointer; user-select: none; }
  .scroll { max-height: 520px; overflow: auto; border: 1px solid var(--line); }
  .share { display: inline-block; height: 10px; background: var(--accent); vertical-align: middle; margin-right: 6px; }
  .charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, 520px), 1fr)); gap: 12px; }
  .chart { border: 1px solid var(--line); padding: 6px 8px; min-width: 0; }
  .chart svg { width: 100%; height: auto; display: block; }
  .chart .title { font-weight: 500; margin-bottom: 2px; }
  .chart text { fill: var(--muted); font-size: 11px; }
  .chart .grid { stroke: var(--faint); }
  .chart .axis { stroke: var(--line); }
  .legend { display: flex; flex-wrap: wrap; gap: 2px 14px; margin: 4px 0 8px; }
  .legend span { white-space: nowrap; }
  .no { color: var(--bad); font-weight: 500; }
  .warn { color: var(--warn); }
  dl.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); gap: 0 24px; margin: 6px 0; }
  dl.figures div { display: flex; justify-content: space-between; gap: 12px; border-bottom: 1px solid var(--faint);
                   padding: 2px 0; min-width: 0; }
  dl.figures dt { color: var(--muted); overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
  dl.figures dd { margin: 0; text-align: right; font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
  svg.top text { fill: var(--fg); }
  input[type=search] { width: 240px; }
  select { max-width: 320px; }
`;

// Formatting: three significant digits, like nns_callbacks.cost.format_count / format_bytes. Anything
// that is not a finite number is shown as it is (a field may be missing, null, or of a newer kind).

export const isNumber = (value) => typeof value === "number" && Number.isFinite(value);

function threeDigits(value) {
  const text = value.toPrecision(3);
  return text.includes("e") ? value.toFixed(0) : String(Number(text));
}

export function other(value) {
  if (value === null || value === undefined || (typeof value === "number" && !Number.isFinite(value))) return "–";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

export function formatCount(value, unit = "") {
  if (!isNumber(value)) return other(value);
  const rounded = Number(value.toPrecision(3));
  for (const [prefix, scale] of [["P", 1e15], ["T", 1e12], ["G", 1e9], ["M", 1e6], ["k", 1e3]]) {
    if (Math.abs(rounded) >= scale) return `${threeDigits(rounded / scale)} ${prefix}${unit}`;
  }
  return `${Number(value.toPrecision(4))} ${unit}`.trim();
}

export function formatBytes(value) {
  if (!isNumber(value)) return other(value);
  for (const [unit, scale] of [["TiB", 2 ** 40], ["GiB", 2 ** 30], ["MiB", 2 ** 20], ["KiB", 2 ** 10]]) {
    if (Math.abs(value) >= scale) return `${threeDigits(value / scale)} ${unit}`;
  }
  return `${Math.round(value)} B`;
}

const formatInteger = (value) => (isNumber(value) ? value.toLocaleString("en-US") : other(value));
export function formatPercent(value) {
  if (!isNumber(value)) return other(value);
  const percent = 100 * value;
  return percent !== 0 && Math.abs(percent) < 0.1 ? `${percent.toPrecision(2)}%` : `${percent.toFixed(1)}%`;
}
export const formatSeconds = (value) => (isNumber(value) ? `${Number(value.toPrecision(3))} s` : other(value));
export const formatFlopsPerSec = (value) => formatCount(value, "FLOP/s");

function formatField(key, value) {
  // A field of the cost document, known or new, by its name.
  if (!isNumber(value)) return other(value);
  if (/bytes/.test(key)) return formatBytes(value);
  if (/share|(^|_)[mh]fu$/.test(key)) return formatPercent(value);
  if (/flops_per_sec/.test(key)) return formatFlopsPerSec(value);
  if (/macs/.test(key)) return formatCount(value, "MAC");
  if (/flops/.test(key)) return formatCount(value, "FLOP");
  if (/seconds/.test(key)) return formatSeconds(value);
  if (Number.isInteger(value)) return formatInteger(value);
  return formatCount(value);
}

// Sorting: numbers numerically, text naturally ("(None, 8, 8)" before "(None, 32, 32)"), blanks last.

function naturalCompare(a, b) {
  const split = (text) => String(text).split(/(\d+(?:\.\d+)?)/);
  const [x, y] = [split(a), split(b)];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] === y[i]) continue;
    const numeric = i % 2 === 1;
    if (numeric) return Number(x[i]) - Number(y[i]);
    return x[i] < y[i] ? -1 : 1;
  }
  return x.length - y.length;
}

function compareValues(a, b, descending) {
  const blank = (v) => v === null || v === undefined || v === "" || (typeof v === "number" && !Number.isFinite(v));
  if (blank(a) || blank(b)) return blank(a) - blank(b); // blanks last either way
  const order = typeof a === "number" && typeof b === "number" ? a - b : naturalCompare(a, b);
  return descending ? -order : order;
}

// DOM helpers.

export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export function svg(tag, attributes = {}, text = null) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (text !== null) node.textContent = text;
  return node;
}

async function getJson(route) {
  const response = await fetch(route);
  if (!response.ok) {
    let detail = "";
    try {
      detail = (await response.text()).slice(0, 300);
    } catch {
      detail = "";
    }
    throw new Error(`${route}: HTTP ${response.status} ${detail}`);
  }
  return response.json();
}

// TensorBoard's side. A dynamic plugin's iframe talks to TensorBoard through the experimental plugin API
// (tensorboard/components/experimental/plugin_lib): it posts "experimental.bootstrap" with a MessagePort
// to its parent; TensorBoard then sends JSON messages {type, id, payload, error, isReply} on that port,
// among them "experimental.DataReloaded" at each data reload (its reload button, its auto-reload) and
// "experimental.RunsChanged" when its run list changes. The API says nothing about the theme: TensorBoard
// marks its own <body> with the class "dark-mode", which this same-origin iframe can read.

function connectToTensorBoard(onReload) {
  if (window.parent === window) return false;
  const channel = new MessageChannel();
  channel.port1.onmessage = (event) => {
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return;
    }
    if (!message || message.isReply) return;
    if (message.type === "experimental.DataReloaded" || message.type === "experimental.RunsChanged") onReload(message.type);
    channel.port1.postMessage(JSON.stringify({ type: message.type, id: message.id, payload: null, error: null, isReply: true }));
  };
  window.parent.postMessage("experimental.bootstrap", "*", [channel.port2]);
  return true;
}

function followTheme(apply) {
  let parentBody = null;
  try {
    if (window.parent !== window) parentBody = window.parent.document.body;
  } catch {
    parentBody = null; // another origin: its theme cannot be read
  }
  if (parentBody) {
    const update = () => apply(parentBody.classList.contains("dark-mode"));
    new MutationObserver(update).observe(parentBody, { attributes: true, attributeFilter: ["class"] });
    update();
    return "TensorBoard's theme";
  }
  const media = window.matchMedia("(prefers-color-scheme: dark)");
  media.addEventListener("change", () => apply(media.matches));
  apply(media.matches);
  return "the browser's colour scheme";
}

// Series and latest values of the throughput scalars.

function seriesOf(throughput, split, tag) {
  const found = throughput && throughput[split] && throughput[split][tag];
  return Array.isArray(found) ? found : [];
}

function latest(throughput, tag, split = "train") {
  const points = seriesOf(throughput, split, tag);
  return points.length ? points[points.length - 1] : null;
}

export const latestValue = (throughput, tag, split = "train") => {
  const point = latest(throughput, tag, split);
  return point ? point[1] : null;
};

// Peaks: MFU is comparable between runs only against the same peak FLOP/s.

function peakOf(row) {
  const peak = row.cost && row.cost.peak;
  return peak && typeof peak === "object" && isNumber(peak.flops_per_sec) ? peak : null;
}

const peakKey = (peak) => (peak ? JSON.stringify([peak.flops_per_sec, peak.source, peak.device, peak.precision, peak.devices]) : "none");

function peakText(peak) {
  if (!peak) return "unknown: no MFU";
  const device = [peak.devices && peak.devices !== 1 ? `${peak.devices} x` : null, peak.device].filter(Boolean).join(" ");
  const parts = [device, peak.precision].filter(Boolean).join(", ");
  return `${formatFlopsPerSec(peak.flops_per_sec)} (${parts}${peak.source ? `; ${peak.source}` : ""})`;
}

function bandwidthText(bandwidth) {
  if (!bandwidth || !isNumber(bandwidth.bytes_per_sec)) return "unknown: no roofline";
  const device = [bandwidth.devices && bandwidth.devices !== 1 ? `${bandwidth.devices} x` : null, bandwidth.device].filter(Boolean).join(" ");
  return `${formatCount(bandwidth.bytes_per_sec, "B/s")} (${device}${bandwidth.source ? `; ${bandwidth.source}` : ""})`;
}

// The comparison table's columns: runs down, figures across. ratio: shown as a ratio to the baseline run.

const COLUMNS = [
  { key: "model", title: "model", get: (r) => r.cost && r.cost.model },
  { key: "batch_size", title: "batch", num: true, get: (r) => r.cost && r.cost.batch_size, text: formatInteger },
  { key: "dtype_policy", title: "dtype policy", get: (r) => r.cost && r.cost.dtype_policy },
  { key: "optimizer", title: "optimizer", get: (r) => r.cost && r.cost.optimizer },
  { key: "params", title: "params", num: true, ratio: true, get: (r) => r.cost && r.cost.params, text: (v) => formatCount(v) },
  { key: "forward_macs_per_sample", title: "fwd MACs / sample", num: true, ratio: true, get: (r) => r.cost && r.cost.forward_macs_per_sample, text: (v) => formatCount(v) },
  { key: "forward_flops_per_sample", title: "fwd FLOPs / sample", num: true, ratio: true, get: (r) => r.cost && r.cost.forward_flops_per_sample, text: (v) => formatCount(v) },
  { key: "training_flops", title: "train FLOPs / step", num: true, ratio: true, get: (r) => r.cost && r.cost.training_flops, text: (v) => formatCount(v) },
  { key: "weight_bytes", title: "mem: weights", num: true, get: (r) => r.cost && r.cost.weight_bytes, text: formatBytes },
  { key: "gradient_bytes", title: "mem: grads", num: true, get: (r) => r.cost && r.cost.gradient_bytes, text: formatBytes },
  { key: "optimizer_bytes", title: "mem: optimizer", num: true, get: (r) => r.cost && r.cost.optimizer_bytes, text: formatBytes },
  { key: "activation_bytes", title: "mem: activations", num: true, get: (r) => r.cost && r.cost.activation_bytes, text: formatBytes },
  { key: "training_bytes", title: "mem: estimate (sum)", num: true, ratio: true, get: (r) => r.cost && r.cost.training_bytes, text: formatBytes },
  { key: "devices", title: "devices", num: true, optional: true, get: (r) => r.cost && r.cost.per_device ? r.cost.devices : null, text: formatInteger },
  { key: "per_device_training_bytes", title: "mem per device", num: true, ratio: true, optional: true, get: (r) => r.cost && r.cost.per_device && r.cost.per_device.training_bytes, text: formatBytes },
  { key: "measured_peak_memory_bytes", title: "measured peak mem.", num: true, ratio: true, get: (r) => latestValue(r.throughput, "epoch_peak_memory_bytes"), text: formatBytes },
  { key: "peak_flops_per_sec", title: "peak FLOP/s (source)", num: true, get: (r) => (peakOf(r) ? peakOf(r).flops_per_sec : null), text: (v) => formatCount(v), peak: true },
  { key: "samples_per_sec", title: "samples/s", num: true, ratio: true, get: (r) => latestValue(r.throughput, "epoch_samples_per_sec"), text: (v) => formatCount(v), epoch: "epoch_samples_per_sec" },
  { key: "flops_per_sec", title: "FLOP/s", num: true, ratio: true, get: (r) => scaled(latestValue(r.throughput, "epoch_tflops_per_sec"), 1e12), text: (v) => formatCount(v), epoch: "epoch_tflops_per_sec" },
  { key: "mfu", title: "MFU", num: true, ratio: true, get: (r) => r.mfu, text: formatPercent, epoch: "epoch_mfu" },
  { key: "hfu", title: "HFU", num: true, ratio: true, optional: true, get: (r) => r.hfu, text: formatPercent, epoch: "epoch_hfu" },
  { key: "steady_samples_per_sec", title: "steady samples/s", num: true, ratio: true, optional: true, get: (r) => latestValue(r.throughput, "epoch_steady_samples_per_sec"), text: (v) => formatCount(v) },
  { key: "tokens_per_sec", title: "tokens/s", num: true, ratio: true, optional: true, get: (r) => latestValue(r.throughput, "epoch_tokens_per_sec"), text: (v) => formatCount(v) },
  { key: "compile_seconds", title: "compile s", num: true, optional: true, get: (r) => latestValue(r.throughput, "epoch_compile_seconds"), text: formatSeconds },
  { key: "training_bytes_moved", title: "bytes moved / step", num: true, ratio: true, optional: true, get: (r) => r.cost && r.cost.training_bytes_moved, text: formatBytes },
  { key: "roofline_step_seconds", title: "roofline step s", num: true, ratio: true, optional: true, get: (r) => latestValue(r.throughput, "epoch_roofline_step_seconds"), text: formatSeconds },
  { key: "roofline_fraction", title: "roofline / measured", num: true, ratio: true, optional: true, get: (r) => latestValue(r.throughput, "epoch_roofline_fraction"), text: formatPercent, epoch: "epoch_roofline_fraction" },
];

const scaled = (value, factor) => (isNumber(value) ? value * factor : null);

// One device's share where several hold the model: the mesh, then its memory, FLOPs and traffic.
function perDeviceSection(doc, figureList) {
  const mesh = Object.entries(doc.mesh_shape || {}).map(([axis, size]) => `${axis} ${size}`).join(" x ");
  const share = doc.per_device;
  const figures = Object.entries(share)
    .filter(([k]) => k !== "notes")
    .map(([k, v]) => [k, formatField(k, v)]);
  for (const note of share.notes || []) figures.push(["note", note]);
  return [el("h3", { "data-testid": "per-device" }, `Per device: ${doc.devices} devices, mesh ${mesh}`), figureList(figures)];
}

// The overlay charts: one line per run.
const OVERLAYS = [
  { title: "samples/s per epoch", value: (r, split) => seriesOf(r.throughput, split, "epoch_samples_per_sec"), format: (v) => formatCount(v) },
  { title: "achieved FLOP/s per epoch", value: (r, split) => seriesOf(r.throughput, split, "epoch_tflops_per_sec").map(([s, v]) => [s, v * 1e12]), format: formatFlopsPerSec },
  { title: "MFU per epoch", value: (r, split) => mfuSeries(r, split), format: formatPercent, mfu: true },
  { title: "measured peak memory per epoch (training)", value: (r) => seriesOf(r.throughput, "train", "epoch_peak_memory_bytes"), format: formatBytes, bytes: true },
];

let commonPeak = null; // the FLOP/s every run's MFU is shown against, or null: each run's own peak

function mfuSeries(row, split) {
  if (!commonPeak) return seriesOf(row.throughput, split, "epoch_mfu");
  return seriesOf(row.throughput, split, "epoch_tflops_per_sec").map(([s, v]) => [s, (v * 1e12) / commonPeak]);
}

// Charts in SVG.

function niceTicks(low, high, count = 4) {
  if (!(high > low)) high = low + (low === 0 ? 1 : Math.abs(low));
  const raw = (high - low) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw);
  const ticks = [];
  for (let v = Math.floor(low / step) * step; v < high + step * 0.999; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

function epochTicks(x0, x1) {
  const span = x1 - x0;
  const step = Math.max(1, Math.ceil(span / 8));
  const ticks = [];
  for (let s = x0; s <= x1; s += step) ticks.push(s);
  return ticks;
}

function lineChart({ title, lines, format, axis = "epoch", width = 640, height = 250, testid = null, bytes = false }) {
  // lines: [{name, color, points: [[step, value], ...], bold}]. axis "epoch": the step is the 0-based
  // epoch index, labelled 1-based as Keras prints epochs; "step": the training step as stored.
  const pad = { left: 74, right: 14, top: 10, bottom: 30 };
  const shown = lines.filter((l) => l.points.length);
  const points = shown.flatMap((l) => l.points).filter((p) => isNumber(p[1]));
  const box = el("div", { class: "chart", "data-testid": testid }, el("div", { class: "title" }, title));
  if (!points.length) {
    box.append(el("div", { class: "muted" }, "no data yet"));
    return box;
  }
  const steps = points.map((p) => p[0]);
  const values = points.map((p) => p[1]);
  const [x0, x1] = [Math.min(...steps), Math.max(...steps)];
  // Memory ticks at round numbers of its binary unit (1 GiB, 2 GiB, ...), the others at round decimals.
  const unit = bytes && Math.max(...values) >= 1024 ? 1024 ** Math.floor(Math.log(Math.max(...values)) / Math.log(1024)) : 1;
  const yTicks = niceTicks(Math.min(0, ...values) / unit, Math.max(...values) / unit).map((t) => t * unit);
  const [y0, y1] = [yTicks[0], yTicks[yTicks.length - 1]];
  const plotWidth = width - pad.left - pad.right;
  const x = (s) => pad.left + (x1 > x0 ? ((s - x0) / (x1 - x0)) * plotWidth : plotWidth / 2);
  const y = (v) => height - pad.bottom - ((v - y0) / (y1 - y0 || 1)) * (height - pad.top - pad.bottom);
  const label = (s) => (axis === "epoch" ? s + 1 : s);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title });
  for (const tick of yTicks) {
    chart.append(svg("line", { class: tick === y0 ? "axis" : "grid", x1: pad.left, x2: width - pad.right, y1: y(tick), y2: y(tick) }));
    chart.append(svg("text", { x: pad.left - 6, y: y(tick) + 4, "text-anchor": "end" }, format(tick)));
  }
  const xTicks = axis === "epoch" ? epochTicks(x0, x1) : [x0, x1];
  for (const tick of xTicks) {
    chart.append(svg("text", { class: "x-tick", x: x(tick), y: height - 12, "text-anchor": "middle" }, String(label(tick))));
  }
  chart.append(svg("text", { x: width - pad.right, y: height - 1, "text-anchor": "end" }, axis));
  for (const line of shown) {
    const valid = line.points.filter((p) => isNumber(p[1]));
    if (!valid.length) continue;
    const path = valid.map((p, i) => `${i ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" ");
    const group = svg("g", { class: "series", "data-run": line.name });
    group.append(svg("path", { d: path, fill: "none", stroke: line.color, "stroke-width": line.bold ? 3 : 1.6 }));
    for (const p of valid) {
      const dot = svg("circle", { cx: x(p[0]), cy: y(p[1]), r: line.bold ? 3.2 : 2.4, fill: line.color });
      dot.append(svg("title", {}, `${line.name}, ${axis} ${label(p[0])}: ${format(p[1])}`));
      group.append(dot);
    }
    chart.append(group);
  }
  box.append(chart);
  return box;
}

function topLayersChart(costDoc) {
  const rows = (costDoc.layers || []).filter((r) => isNumber(r.training_flops) && r.training_flops > 0);
  const top = [...rows].sort((a, b) => b.training_flops - a.training_flops).slice(0, TOP_LAYERS);
  const [labelWidth, barWidth, rowHeight] = [260, 420, 22];
  const height = top.length * rowHeight + 8;
  const largest = top.length ? top[0].training_flops : 1;
  const chart = svg("svg", { class: "top", width: labelWidth + barWidth + 160, height, role: "img" });
  top.forEach((row, i) => {
    const y = 4 + i * rowHeight;
    const width = Math.max(1, (barWidth * row.training_flops) / largest);
    const name = String(row.name);
    const short = name.length > 38 ? `…${name.slice(-37)}` : name;
    chart.append(svg("text", { x: labelWidth - 8, y: y + 15, "text-anchor": "end", "font-size": 12 }, short));
    chart.append(svg("rect", { x: labelWidth, y: y + 3, width, height: rowHeight - 6, style: "fill: var(--accent)" }));
    const label = `${formatCount(row.training_flops, "FLOP")} (${formatPercent(row.training_flops_share)})`;
    chart.append(svg("text", { x: labelWidth + width + 6, y: y + 15, "font-size": 12 }, label));
  });
  return el("div", {}, el("h3", {}, `Top ${top.length} layers by training FLOPs per step`), el("div", { class: "wrap" }, chart));
}

// The per-layer table of one run: human units, share bars, sorting (output shapes numerically) and a filter.

const LAYER_COLUMNS = [
  { key: "name", title: "layer", text: other },
  { key: "type", title: "type", text: other },
  { key: "output_shape", title: "output shape", text: other },
  { key: "params", title: "params", text: formatInteger, num: true },
  { key: "forward_macs", title: "forward MACs", text: (v) => formatCount(v, "MAC"), num: true },
  { key: "training_flops", title: "training FLOPs", text: (v) => formatCount(v, "FLOP"), num: true },
  { key: "training_flops_share", title: "share of training FLOPs", share: true, num: true },
  { key: "activation_bytes", title: "activations kept", text: formatBytes, num: true },
  { key: "training_bytes_moved", title: "bytes moved", text: formatBytes, num: true },
  { key: "arithmetic_intensity", title: "FLOPs / byte", text: (v) => formatCount(v), num: true },
  { key: "counted", title: "counted", text: (v) => (v === false ? el("span", { class: "no" }, "no") : v === true ? "yes" : other(v)) },
];

const layerState = { key: null, descending: true, filter: "" };

function shareCell(value, largest) {
  const width = isNumber(value) && largest > 0 ? Math.round((80 * value) / largest) : 0;
  return [el("span", { class: "share", style: `width:${width}px` }), formatPercent(value)];
}

function layersSection(costDoc) {
  const rows = Array.isArray(costDoc.layers) ? costDoc.layers : [];
  const largestShare = Math.max(0, ...rows.map((r) => (isNumber(r.training_flops_share) ? r.training_flops_share : 0)));
  const body = el("tbody");
  const count = el("span", { class: "muted" });
  const headers = LAYER_COLUMNS.map((column) =>
    el("th", { class: column.num ? "num" : "", "data-key": column.key, onclick: () => sortBy(column.key) }, column.title),
  );

  function sortBy(key) {
    layerState.descending = layerState.key === key ? !layerState.descending : !["name", "type", "output_shape"].includes(key);
    layerState.key = key;
    draw();
  }

  function visibleRows() {
    const needle = layerState.filter.trim().toLowerCase();
    const matches = (r) => !needle || String(r.name).toLowerCase().includes(needle) || String(r.type).toLowerCase().includes(needle);
    let shown = rows.filter(matches);
    if (layerState.key) {
      const key = layerState.key;
      shown = [...shown].sort((a, b) => compareValues(a[key], b[key], layerState.descending));
    }
    return shown;
  }

  function draw() {
    const shown = visibleRows();
    body.replaceChildren(
      ...shown.slice(0, ROW_LIMIT).map((row) =>
        el("tr", {}, LAYER_COLUMNS.map((c) =>
          el("td", { class: c.num ? "num" : "" }, c.share ? shareCell(row[c.key], largestShare) : c.text(row[c.key])),
        )),
      ),
    );
    const limited = shown.length > ROW_LIMIT ? `, the first ${ROW_LIMIT} shown` : "";
    count.textContent = `${shown.length} of ${rows.length} rows${limited}`;
    for (const th of headers) {
      const sorted = th.dataset.key === layerState.key;
      th.classList.toggle("sorted", sorted);
      th.dataset.arrow = sorted ? (layerState.descending ? " ▼" : " ▲") : "";
    }
  }

  const filter = el("input", { type: "search", placeholder: "filter by layer name or type" });
  filter.value = layerState.filter;
  filter.addEventListener("input", () => {
    layerState.filter = filter.value;
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

// CSV and JSON of the comparison table.

function csvField(value) {
  if (value === null || value === undefined) return "";
  const text = typeof value === "object" ? JSON.stringify(value) : String(value);
  return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

function download(name, type, text) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = el("a", { href: url, download: name, style: "display:none" });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

// The page.

export async function render() {
  document.head.append(el("style", {}, STYLE));
  const root = el("div", { id: "nns-root" });
  document.body.append(root);

  const state = {
    runs: [], // the runs route's listing
    ticked: new Set(),
    known: new Set(),
    colors: new Map(),
    throughput: new Map(), // run -> {updated, data, error}
    costDocs: new Map(), // run -> {wall_time, doc, error}
    filter: "",
    baseline: null,
    sort: { key: null, descending: false },
    mfuPeak: "own", // "own", "baseline" or a peak key
    split: "train",
    details: null,
    dark: false,
    updatedAt: null,
  };

  const color = (run) => {
    const index = state.colors.get(run);
    const hue = (index * 137.508 + 25) % 360;
    return `hsl(${hue.toFixed(0)}, 70%, ${state.dark ? 62 : 43}%)`;
  };
  const swatch = (run) => el("span", { class: "swatch", style: `background:${color(run)}` });

  // Controls that stay while the page redraws (so a filter being typed keeps its focus).
  const filterInput = el("input", { type: "search", class: "run-filter", placeholder: "filter runs (regular expression)" });
  const filterNote = el("span", { class: "warn" });
  const selectAll = el("input", { type: "checkbox", class: "select-all" });
  const selectAllLabel = el("label", {}, selectAll, " select all ", el("span", { class: "muted select-count" }));
  const baselineSelect = el("select", { class: "baseline", title: "the run the ratios are taken to" });
  const peakSelect = el("select", { class: "mfu-peak", title: "the peak FLOP/s behind every run's MFU" });
  const csvButton = el("button", { class: "download-csv", onclick: () => downloadTable("csv") }, "CSV");
  const jsonButton = el("button", { class: "download-json", onclick: () => downloadTable("json") }, "JSON");
  const reloadNote = el("span", { class: "muted reload-note" });
  const runList = el("div", { class: "runs" });
  const content = el("div", { class: "compare-view" });
  const details = el("div", { class: "details-view" });

  filterInput.addEventListener("input", () => {
    state.filter = filterInput.value;
    update();
  });
  selectAll.addEventListener("change", () => {
    const matching = matchingRuns();
    const all = matching.every((r) => state.ticked.has(r.run));
    for (const r of matching) all ? state.ticked.delete(r.run) : state.ticked.add(r.run);
    update();
  });
  baselineSelect.addEventListener("change", () => {
    state.baseline = baselineSelect.value;
    draw();
  });
  peakSelect.addEventListener("change", () => {
    state.mfuPeak = peakSelect.value;
    draw();
  });

  root.append(
    el("h1", {}, "Cost: what the models cost, and how much of the hardware they use"),
    el("div", { class: "muted" }, "A MAC is one multiply-add; a FLOP is one floating-point operation (a MAC is 2 FLOPs). Papers call MACs \u201cFLOPs\u201d. Epochs are numbered from 1, as Keras prints them."),
    el("div", { class: "toolbar" }, filterInput, filterNote, selectAllLabel,
      el("label", {}, "baseline ", baselineSelect), el("label", {}, "MFU against ", peakSelect),
      el("span", {}, "download the table: ", csvButton, " ", jsonButton), reloadNote),
    runList,
    content,
    details,
  );

  function filterRegex() {
    if (!state.filter) return null;
    try {
      filterNote.textContent = "";
      filterInput.classList.remove("invalid");
      return new RegExp(state.filter, "i");
    } catch {
      filterNote.textContent = "not a regular expression: matched as text";
      filterInput.classList.add("invalid");
      const text = state.filter.toLowerCase();
      return { test: (name) => name.toLowerCase().includes(text) };
    }
  }

  function matchingRuns() {
    const regex = filterRegex();
    return state.runs.filter((r) => !regex || regex.test(r.run));
  }

  const comparedRuns = () => matchingRuns().filter((r) => state.ticked.has(r.run));

  // Rows: a run's listing, throughput, MFU (against its own peak or the common one) and HFU.
  function rowsOf(runs) {
    return runs.map((entry) => {
      const throughput = (state.throughput.get(entry.run) || {}).data || null;
      const row = { run: entry.run, entry, cost: entry.cost, status: entry.status || {}, throughput };
      const tflops = latestValue(throughput, "epoch_tflops_per_sec");
      const peak = peakOf(row);
      row.mfu = commonPeak ? scaled(tflops, 1e12 / commonPeak) : latestValue(throughput, "epoch_mfu");
      const hfu = latestValue(throughput, "epoch_hfu");
      row.hfu = commonPeak ? (isNumber(hfu) && peak ? (hfu * peak.flops_per_sec) / commonPeak : null) : hfu;
      return row;
    });
  }

  function stateCell(row) {
    const status = row.status;
    const stateName = status.state || "unknown";
    const rule = status.rule ? ` (${status.rule} rule)` : "";
    const lines = [el("span", { class: `state-${stateName}`, title: `${stateName}${rule}: ${status.reason || ""}` }, stateName)];
    if (status.cost === "missing") lines.push(el("div", { class: "no", title: status.cost_error || "" }, "no cost model"));
    if (status.cost === "damaged") lines.push(el("div", { class: "no", title: status.cost_error || "" }, "cost unreadable"));
    return lines;
  }

  function notes(rows) {
    const items = [];
    for (const row of rows) {
      const s = row.status;
      const name = [swatch(row.run), el("b", {}, row.run)];
      if (s.state === "interrupted") items.push(el("li", { "data-run": row.run }, name, ": interrupted, ", s.reason || "", ` (${s.rule} rule)`));
      if (s.cost === "missing") items.push(el("li", { "data-run": row.run }, name, ": no cost model", s.cost_error ? `: ${s.cost_error}` : " (its cost could not be estimated)"));
      if (s.cost === "damaged") items.push(el("li", { "data-run": row.run }, name, `: its cost document cannot be read: ${s.cost_error}`));
      if (s.error) items.push(el("li", { "data-run": row.run }, name, `: its run-status document cannot be read: ${s.error}`));
    }
    return items.length ? el("ul", { class: "notes", "data-testid": "run-notes" }, items) : null;
  }

  function compareTable(rows, baseline, reference) {
    const columns = COLUMNS.filter((c) => !c.optional || rows.some((r) => isNumber(c.get(r))));
    const sortKey = state.sort.key;
    const sortValue = (row, key) => {
      if (key === "run") return row.run;
      if (key === "state") return row.status.state;
      const column = columns.find((c) => c.key === key);
      return column ? column.get(row) : null;
    };
    const sorted = sortKey ? [...rows].sort((a, b) => compareValues(sortValue(a, sortKey), sortValue(b, sortKey), state.sort.descending)) : rows;
    const header = (key, title, cls = "") => {
      const sortedHere = key === sortKey;
      return el("th", {
        class: `${cls}${sortedHere ? " sorted" : ""}`,
        "data-key": key,
        "data-arrow": sortedHere ? (state.sort.descending ? " ▼" : " ▲") : "",
        onclick: () => {
          state.sort = { key, descending: key === sortKey ? !state.sort.descending : false };
          draw();
        },
      }, title);
    };
    const mfuTitle = commonPeak ? `MFU vs ${formatFlopsPerSec(commonPeak)}` : "MFU";
    const head = el("tr", {}, header("run", "run", "run"), el("th", { title: "the baseline run: ratios are to it" }, "base"),
      header("state", "state"),
      columns.map((c) => header(c.key, c.key === "mfu" ? mfuTitle : c.key === "hfu" && commonPeak ? `HFU vs ${formatFlopsPerSec(commonPeak)}` : c.title, c.num ? "num" : "")));
    const baseRow = rows.find((r) => r.run === baseline);
    const body = sorted.map((row) => {
      const isBase = row.run === baseline;
      const radio = el("input", { type: "radio", name: "baseline", value: row.run, title: "make this run the baseline" });
      radio.checked = isBase;
      radio.addEventListener("change", () => {
        state.baseline = row.run;
        draw();
      });
      const cells = columns.map((c) => {
        const value = c.get(row);
        const title = c.epoch ? epochTitle(row, c.epoch) : null;
        const cell = el("td", { class: c.num ? "num" : "", "data-key": c.key, title }, c.text ? c.text(value) : other(value));
        if (c.peak) {
          const peak = peakOf(row);
          const differs = Boolean(peak) && peakKey(peak) !== reference;
          cell.replaceChildren(el("span", { class: differs ? "differs" : "" }, differs ? "≠ " : "", formatCount(peak ? peak.flops_per_sec : null)));
          cell.append(el("div", { class: "ratio source" }, peak ? [peak.device, peak.precision, peak.source].filter(Boolean).join(", ") : "no MFU"));
          cell.title = peakText(peak) + (differs ? ": not the baseline's peak, so MFU is not comparable (see MFU against)" : "");
        }
        if (c.key === "mfu" && !commonPeak && peakOf(row) && peakKey(peakOf(row)) !== reference && isNumber(value)) {
          cell.prepend(el("span", { class: "differs", title: "against another peak than the baseline's" }, "≠ "));
        }
        if (c.ratio && !isBase && baseRow) {
          const base = c.get(baseRow);
          if (isNumber(value) && isNumber(base) && base !== 0) {
            const ratio = value / base;
            const tone = Math.abs(ratio - 1) < 0.005 ? "" : ratio > 1 ? " up" : " down";
            cell.append(el("div", { class: `ratio${tone}` }, `×${Number(ratio.toPrecision(3))}`));
          }
        }
        return cell;
      });
      const runCell = el("td", { class: "run", title: `${row.run}: show its details below`, onclick: () => showDetails(row.run) }, swatch(row.run), row.run);
      return el("tr", {
        "data-run": row.run,
        "data-state": row.status.state || "unknown",
        "data-cost": row.status.cost || "",
        class: [isBase ? "baseline" : "", row.run === state.details ? "details" : ""].join(" ").trim(),
      }, runCell, el("td", {}, radio), el("td", { class: "state" }, stateCell(row)), cells);
    });
    const table = el("table", { class: "compare", "data-testid": "compare" }, el("thead", {}, head), el("tbody", {}, body));
    return { table, columns, sorted };
  }

  function epochTitle(row, tag) {
    const point = latest(row.throughput, tag);
    return point ? `${row.run}: epoch ${point[0] + 1} (training)` : null;
  }

  let lastTable = null; // {columns, sorted, baseline} of the table on the page, for the downloads

  function tableRecords() {
    if (!lastTable) return [];
    const { columns, sorted, baseline } = lastTable;
    const baseRow = sorted.find((r) => r.run === baseline);
    return sorted.map((row) => {
      const record = { run: row.run, baseline: row.run === baseline, state: row.status.state || "unknown",
                       state_rule: row.status.rule || null, state_reason: row.status.reason || null,
                       cost: row.status.cost || null, cost_error: row.status.cost_error || null };
      for (const c of columns) record[c.key] = c.get(row) ?? null;
      const peak = peakOf(row);
      Object.assign(record, { peak_source: peak ? peak.source ?? null : null, peak_device: peak ? peak.device ?? null : null,
                              peak_precision: peak ? peak.precision ?? null : null, peak_devices: peak ? peak.devices ?? null : null,
                              mfu_against_flops_per_sec: commonPeak || (peak ? peak.flops_per_sec : null) });
      for (const c of columns.filter((c) => c.ratio)) {
        const [value, base] = [c.get(row), baseRow ? c.get(baseRow) : null];
        record[`${c.key}_vs_baseline`] = isNumber(value) && isNumber(base) && base !== 0 ? value / base : null;
      }
      return record;
    });
  }

  function downloadTable(kind) {
    const records = tableRecords();
    if (kind === "json") {
      const payload = { baseline: lastTable && lastTable.baseline, mfu_against: commonPeak ? "common peak" : "each run's own peak",
                        columns: lastTable ? lastTable.columns.map((c) => ({ key: c.key, title: c.title })) : [], rows: records };
      download("nns_cost_comparison.json", "application/json", JSON.stringify(payload, null, 2));
      return;
    }
    const keys = records.length ? Object.keys(records[0]) : ["run"];
    const lines = [keys.join(","), ...records.map((r) => keys.map((k) => csvField(r[k])).join(","))];
    download("nns_cost_comparison.csv", "text/csv", `${lines.join("\n")}\n`);
  }

  function drawRunList() {
    const matching = matchingRuns();
    const tickedMatching = matching.filter((r) => state.ticked.has(r.run)).length;
    selectAll.checked = matching.length > 0 && tickedMatching === matching.length;
    selectAll.indeterminate = tickedMatching > 0 && tickedMatching < matching.length;
    selectAllLabel.querySelector(".select-count").textContent = `(${tickedMatching} of ${matching.length} shown${matching.length < state.runs.length ? `, ${state.runs.length} in all` : ""})`;
    runList.replaceChildren(
      ...matching.map((r) => {
        const box = el("input", { type: "checkbox", value: r.run });
        box.checked = state.ticked.has(r.run);
        box.addEventListener("change", () => {
          box.checked ? state.ticked.add(r.run) : state.ticked.delete(r.run);
          update();
        });
        const what = r.model ? `${r.model}, batch ${formatInteger(r.batch_size)}` : "no cost model";
        return el("label", { title: `${r.run}: ${what}; ${(r.status && r.status.state) || "unknown"}` }, box, swatch(r.run), r.run);
      }),
    );
    if (!state.runs.length) runList.replaceChildren(el("span", { class: "muted" }, "No run holds a cost model yet: train with NNSCallback(log_dir=...)."));
  }

  function drawPeakSelect(rows, baseRow) {
    const peaks = new Map();
    for (const row of rows) {
      const peak = peakOf(row);
      if (peak) peaks.set(peakKey(peak), peak);
    }
    const basePeak = baseRow ? peakOf(baseRow) : null;
    const options = [["own", "each run's own peak"]];
    if (basePeak) options.push(["baseline", `the baseline's: ${peakText(basePeak)}`]);
    for (const [key, peak] of peaks) if (!basePeak || key !== peakKey(basePeak)) options.push([key, peakText(peak)]);
    if (!options.some(([key]) => key === state.mfuPeak)) state.mfuPeak = "own";
    peakSelect.replaceChildren(...options.map(([key, text]) => el("option", { value: key }, text)));
    peakSelect.value = state.mfuPeak;
    if (state.mfuPeak === "own") return null;
    if (state.mfuPeak === "baseline") return basePeak.flops_per_sec;
    return peaks.get(state.mfuPeak).flops_per_sec;
  }

  function draw() {
    drawRunList();
    const compared = comparedRuns();
    if (!compared.some((r) => r.run === state.baseline)) {
      const first = compared.find((r) => r.cost) || compared[0];
      state.baseline = first ? first.run : null;
    }
    baselineSelect.replaceChildren(...compared.map((r) => el("option", { value: r.run }, r.run)));
    baselineSelect.value = state.baseline || "";
    let rows = rowsOf(compared);
    const baseRow = rows.find((r) => r.run === state.baseline);
    commonPeak = drawPeakSelect(rows, baseRow);
    rows = rowsOf(compared); // again, with the common peak
    if (!compared.length) {
      lastTable = null;
      content.replaceChildren(el("p", { class: "muted" }, state.runs.length ? "Tick a run to compare it." : ""));
      drawDetails();
      return;
    }
    // The reference peak: the baseline's, else the most common one.
    const counts = new Map();
    for (const row of rows) counts.set(peakKey(peakOf(row)), (counts.get(peakKey(peakOf(row))) || 0) + 1);
    const basePeak = baseRow ? peakOf(baseRow) : null;
    const reference = basePeak ? peakKey(basePeak) : [...counts.entries()].sort((a, b) => b[1] - a[1])[0][0];
    const differing = rows.filter((r) => peakOf(r) && peakKey(peakOf(r)) !== reference);
    const { table, columns, sorted } = compareTable(rows, state.baseline, reference);
    lastTable = { columns, sorted, baseline: state.baseline };
    const notice = differing.length && !commonPeak
      ? el("div", { class: "notice", "data-testid": "peak-notice" },
        `${differing.length} run${differing.length > 1 ? "s" : ""} (marked ≠) ${differing.length > 1 ? "use" : "uses"} another peak FLOP/s than `,
        basePeak ? `the baseline's, ${peakText(basePeak)}` : "the others", `: ${differing.length > 1 ? "their" : "its"} MFU is not comparable with the baseline's. `,
        el("button", { onclick: () => { state.mfuPeak = basePeak ? "baseline" : peakKey(peakOf(differing[0])); draw(); } },
          "Show every run's MFU against one peak"))
      : commonPeak
        ? el("div", { class: "notice", "data-testid": "peak-notice" }, `Every run's MFU (and HFU) is shown against ${formatFlopsPerSec(commonPeak)}: achieved FLOP/s / ${formatFlopsPerSec(commonPeak)}.`)
        : null;
    const legend = el("div", { class: "legend" }, rows.map((r) => el("span", {}, swatch(r.run), r.run)));
    const splitSelect = el("select", { class: "split" }, el("option", { value: "train" }, "training"), el("option", { value: "validation" }, "validation"));
    splitSelect.value = state.split;
    splitSelect.addEventListener("change", () => {
      state.split = splitSelect.value;
      draw();
    });
    const charts = OVERLAYS.map((chart, i) =>
      lineChart({
        title: chart.mfu && commonPeak ? `MFU per epoch, against ${formatFlopsPerSec(commonPeak)}` : chart.title,
        format: chart.format,
        bytes: chart.bytes,
        testid: `overlay-${i}`,
        lines: rows.map((r) => ({ name: r.run, color: color(r.run), bold: r.run === state.baseline, points: chart.value(r, state.split) })),
      }),
    );
    content.replaceChildren(...[
      el("h2", {}, `Comparison of ${rows.length} run${rows.length > 1 ? "s" : ""}`, el("span", { class: "muted" }, "click a heading to sort, a run to see its details; ratios are to the baseline")),
      notes(rows),
      notice,
      el("div", { class: "wrap" }, table),
      el("h2", {}, "Per epoch", el("label", { class: "muted" }, "data: ", splitSelect)),
      legend,
      el("div", { class: "charts", "data-testid": "overlays" }, charts),
    ].filter(Boolean)); // replaceChildren would write a null as the text "null"
    drawDetails();
  }

  // One run's details: every figure of its cost document, its windows, its top layers and layer table.
  let detailsDrawn = null;

  function showDetails(run) {
    state.details = run;
    draw();
    details.scrollIntoView({ behavior: "smooth", block: "start" });
  }

  async function drawDetails() {
    const compared = comparedRuns();
    if (!compared.some((r) => r.run === state.details)) state.details = state.baseline;
    const run = state.details;
    if (!run) {
      details.replaceChildren();
      detailsDrawn = null;
      return;
    }
    const entry = state.runs.find((r) => r.run === run);
    const select = el("select", { class: "details-run" }, compared.map((r) => el("option", { value: r.run }, r.run)));
    select.value = run;
    select.addEventListener("change", () => showDetails(select.value));
    let cached = state.costDocs.get(run);
    if (entry.cost && (!cached || cached.wall_time !== entry.wall_time)) {
      try {
        cached = { wall_time: entry.wall_time, doc: await getJson(`layers?run=${encodeURIComponent(run)}`) };
      } catch (error) {
        cached = { wall_time: entry.wall_time, error: error.message };
      }
      state.costDocs.set(run, cached);
      if (state.details !== run) return; // another run was chosen meanwhile
    }
    const key = JSON.stringify([run, entry.wall_time, entry.updated, state.dark, state.colors.get(run), entry.status]);
    if (detailsDrawn === key) {
      select.value = run;
      details.querySelector("select.details-run")?.replaceWith(select);
      return;
    }
    detailsDrawn = key;
    const throughput = (state.throughput.get(run) || {}).data || null;
    const heading = el("h2", { "data-testid": "details" }, "Details of ", swatch(run), select,
      el("span", { class: "muted" }, entry.model ? `${entry.model}, cost written at step ${entry.step}` : "no cost model"));
    const parts = [heading];
    const status = entry.status || {};
    const statusFigures = [
      ["state", `${status.state || "unknown"}${status.rule ? ` (${status.rule} rule)` : ""}`],
      ["why", status.reason],
      ["backend", status.backend],
      ["writer", status.writer ? `${status.writer.host || "?"}, pid ${status.writer.pid ?? "?"}` : null],
      ["cost model", status.cost === "ok" ? "yes" : status.cost_error ? `${status.cost}: ${status.cost_error}` : status.cost],
    ].filter(([, v]) => v !== null && v !== undefined && v !== "");
    parts.push(figureList(statusFigures));
    const doc = cached && cached.doc;
    if (cached && cached.error) parts.push(el("p", { class: "no" }, `Could not read its cost model: ${cached.error}`));
    if (doc) {
      const figures = Object.entries(doc)
        .filter(([k, v]) => !["layers", "conventions", "run", "step", "wall_time", "peak", "bandwidth", "roofline", "by_kind"].includes(k) && (v === null || typeof v !== "object" || Array.isArray(v)))
        .map(([k, v]) => [k, formatField(k, v)]);
      if (doc.unsupported && typeof doc.unsupported === "object") {
        const entries = Object.entries(doc.unsupported);
        figures.push(["not counted (cost 0)", entries.length ? entries.map(([n, c]) => `${n} x${c}`).join(", ") : "nothing"]);
      }
      figures.push(["peak FLOP/s behind MFU", peakText(peakOf({ cost: doc }))]);
      if ("bandwidth" in doc) figures.push(["memory bandwidth (roofline)", bandwidthText(doc.bandwidth)]);
      for (const [k, v] of Object.entries(doc)) {
        if (v && typeof v === "object" && !Array.isArray(v) && !["unsupported", "peak", "bandwidth", "roofline", "per_device", "mesh_shape"].includes(k)) figures.push([k, JSON.stringify(v)]);
      }
      parts.push(el("h3", {}, "Every figure of its cost model"), figureList(figures));
      if (doc.per_device && typeof doc.per_device === "object") parts.push(...perDeviceSection(doc, figureList));
    }
    const measured = [];
    for (const split of ["train", "validation"]) {
      for (const [tag, points] of Object.entries((throughput && throughput[split]) || {})) {
        if (!tag.startsWith("epoch_") || !points.length) continue;
        const [step, value] = points[points.length - 1];
        measured.push([`${tag} (${split === "train" ? "training" : "validation"}, epoch ${step + 1})`, formatField(tag.replace(/tflops/, "flops"), tag.includes("tflops") ? value * 1e12 : value)]);
      }
    }
    if (measured.length) parts.push(el("h3", {}, "Latest measured"), figureList(measured));
    const windows = [
      ["samples/s per window of steps", "batch_samples_per_sec", (v) => formatCount(v), 1],
      ["achieved FLOP/s per window of steps", "batch_tflops_per_sec", formatFlopsPerSec, 1e12],
      ["MFU per window of steps", "batch_mfu", formatPercent, 1],
    ].filter(([, tag]) => seriesOf(throughput, "train", tag).length);
    const perEpoch = [
      ["samples/s per epoch", "epoch_samples_per_sec", (v) => formatCount(v), 1],
      ["achieved FLOP/s per epoch", "epoch_tflops_per_sec", formatFlopsPerSec, 1e12],
    ];
    const splitLines = (tag, factor) => [
      { name: "training", color: color(run), points: seriesOf(throughput, "train", tag).map(([s, v]) => [s, v * factor]) },
      { name: "validation", color: state.dark ? "#9aa0a6" : "#757575", points: seriesOf(throughput, "validation", tag).map(([s, v]) => [s, v * factor]) },
    ];
    parts.push(el("h3", {}, "Throughput of this run (training in its colour, validation in grey)"),
      el("div", { class: "charts" },
        perEpoch.map(([title, tag, format, factor]) => lineChart({ title, format, lines: splitLines(tag, factor) })),
        windows.map(([title, tag, format, factor]) => lineChart({ title, format, axis: "step", lines: splitLines(tag, factor).slice(0, 1) }))));
    if (doc) parts.push(rooflineSection(doc, throughput), topLayersChart(doc), layersSection(doc));
    details.replaceChildren(el("section", { "data-run": run, class: "details" }, parts));
  }

  function figureList(pairs) {
    return el("dl", { class: "figures" }, pairs.map(([k, v]) => el("div", {}, el("dt", { title: k }, k), el("dd", {}, v))));
  }

  // Reading: the runs, then the throughput of the runs compared whose data changed.
  async function loadThroughput(runs) {
    await Promise.all(runs.map(async (entry) => {
      const cached = state.throughput.get(entry.run);
      if (cached && cached.updated === entry.updated && !cached.error) return;
      try {
        state.throughput.set(entry.run, { updated: entry.updated, data: await getJson(`throughput?run=${encodeURIComponent(entry.run)}`) });
      } catch (error) {
        state.throughput.set(entry.run, { updated: entry.updated, data: null, error: error.message });
      }
    }));
  }

  async function update() {
    drawRunList();
    await loadThroughput(comparedRuns());
    draw();
  }

  let refreshing = null;
  let again = false;
  async function refresh(why) {
    if (refreshing) {
      again = true;
      return refreshing;
    }
    refreshing = (async () => {
      try {
        const runs = await getJson("runs");
        for (const entry of runs) {
          if (!state.colors.has(entry.run)) state.colors.set(entry.run, state.colors.size);
          if (!state.known.has(entry.run)) {
            state.known.add(entry.run);
            state.ticked.add(entry.run); // a new run is ticked, as TensorBoard's run selector does
          }
        }
        state.runs = runs;
        state.updatedAt = new Date();
        reloadNote.textContent = `runs read at ${state.updatedAt.toLocaleTimeString()} (${why})`;
        await update();
      } catch (error) {
        reloadNote.textContent = `could not read the runs: ${error.message}`;
      }
    })();
    try {
      await refreshing;
    } finally {
      refreshing = null;
    }
    if (again) {
      again = false;
      await refresh(why);
    }
  }

  let pending = null;
  const scheduleRefresh = (why) => {
    clearTimeout(pending);
    pending = setTimeout(() => refresh(why), 150);
  };

  const themeSource = followTheme((dark) => {
    document.body.classList.toggle("dark", dark);
    if (state.dark !== dark) {
      state.dark = dark;
      if (state.runs.length) draw();
    }
  });
  const embedded = connectToTensorBoard(() => scheduleRefresh("on TensorBoard's reload"));
  if (!embedded) setInterval(() => scheduleRefresh(`polled every ${POLL_MS / 1000} s: not inside TensorBoard`), POLL_MS);
  document.body.dataset.reload = embedded ? "tensorboard" : "poll";
  document.body.dataset.theme = themeSource;
  await refresh(embedded ? "opened inside TensorBoard: refreshed on its reload" : `opened alone: polled every ${POLL_MS / 1000} s`);
}
