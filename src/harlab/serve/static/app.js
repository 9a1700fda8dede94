// harlab serve's page: the live view (a stream's signals, current activity, timeline) and the review view (a
// recording's signals with the predicted timeline, spans relabelled and saved as an interval file).
import { CHANNEL_COLORS, colorOf, drawAxis, drawBands, drawLines, legend, prepare, timeAt, xOf } from "./plot.js";

const $ = (id) => document.getElementById(id);
const LIVE_SECONDS = 10;
let model = null;

async function api(path, options = {}) {
  const response = await fetch(path, { credentials: "same-origin", ...options });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || `${response.status} ${response.statusText}`);
  return body;
}

function showError(error) {
  $("error").hidden = !error;
  $("error").textContent = error ? String(error.message || error) : "";
}

function groups(channels) {
  // Channel indices by sensor: acc_* together, gyro_* together, any other channel alone.
  const found = new Map();
  channels.forEach((name, i) => {
    const key = /^(acc|gyro)_/.test(name) ? name.split("_")[0] : name;
    found.set(key, [...(found.get(key) || []), i]);
  });
  return [...found.entries()];
}

function segmentsOf(windows) {
  // Consecutive windows with one activity merged; a segment ends where the next begins (as harlab predict).
  const segments = [];
  for (const w of windows) extendSegments(segments, w);
  return segments;
}

function extendSegments(segments, w) {
  const last = segments[segments.length - 1];
  if (last && last.label === w.activity) {
    last.end = w.end;
    last.confidences.push(w.confidence);
    return false;
  }
  if (last) last.end = Math.min(last.end, w.start);
  segments.push({ start: w.start, end: w.end, label: w.activity, confidences: [w.confidence] });
  return true;
}

const mean = (values) => values.reduce((a, b) => a + b, 0) / values.length;

// ---------------------------------------------------------------- live view
const live = { stream: null, source: null, windows: [], segments: [], times: [], values: [], drawing: false };

async function refreshStreams() {
  try {
    const streams = await api("/api/live");
    const select = $("live-stream");
    const names = streams.map((s) => s.name);
    if (names.join() !== [...select.options].map((o) => o.value).join()) {
      select.replaceChildren(...names.map((name) => new Option(name, name)));
    }
    if (!live.stream && names.length) watch(model.replay && names.includes(model.replay) ? model.replay : names[0]);
    select.value = live.stream || "";
  } catch (error) {
    showError(error);
  }
}

function watch(name) {
  if (live.source) live.source.close();
  Object.assign(live, { stream: name, windows: [], segments: [], times: [], values: [] });
  live.source = new EventSource(`/api/live/events?stream=${encodeURIComponent(name)}`);
  live.source.onmessage = (message) => onLiveEvent(JSON.parse(message.data));
  live.source.onerror = () => { $("live-status").textContent = `${name}: reconnecting…`; };
}

function onLiveEvent(event) {
  if (event.type === "snapshot") {
    Object.assign(live, { windows: [], segments: [], times: event.times, values: event.values });
    $("live-segments").tBodies[0].replaceChildren();
    event.windows.forEach(addWindow);
    live.status = event.status;
  } else if (event.type === "signals") {
    live.times.push(...event.times);
    live.values.push(...event.values);
    const from = live.times.findIndex((t) => t >= live.times[live.times.length - 1] - LIVE_SECONDS);
    live.times.splice(0, from);
    live.values.splice(0, from);
  } else if (event.type === "window") {
    addWindow(event);
  } else if (event.type === "status") {
    live.status = event.status;
  }
  $("live-status").textContent = `${live.stream}: ${live.windows.length} windows, ${live.status || "streaming"}`;
  if (!live.drawing) {
    live.drawing = true;
    requestAnimationFrame(drawLive);
  }
}

function addWindow(w) {
  const last = live.windows[live.windows.length - 1];
  if (last && w.start <= last.start) return; // already shown (a snapshot overlapping the events)
  live.windows.push(w);
  const rows = $("live-segments").tBodies[0];
  if (extendSegments(live.segments, w)) rows.append(document.createElement("tr"));
  const shown = live.segments.slice(-2);
  [...rows.rows].slice(-shown.length).forEach((row, i) => segmentRow(row, shown[i]));
  $("current-activity").textContent = w.activity;
  $("current-confidence").textContent = `${Math.round(w.confidence * 100)} %`;
  $("confidence-bar").style.width = `${w.confidence * 100}%`;
  $("confidence-bar").style.background = colorOf(w.activity, model.classes);
}

function segmentRow(row, segment) {
  Object.assign(row.dataset, { start: segment.start, end: segment.end, activity: segment.label });
  const cells = [segment.start.toFixed(2), segment.end.toFixed(2), segment.label, mean(segment.confidences).toFixed(2)];
  row.replaceChildren(...cells.map((text) => Object.assign(document.createElement("td"), { textContent: text })));
}

function drawLive() {
  live.drawing = false;
  const signals = prepare($("live-signals"));
  const now = live.times.length ? live.times[live.times.length - 1] : LIVE_SECONDS;
  const view = { t0: now - LIVE_SECONDS, t1: now };
  const parts = groups(model.channels);
  const height = (signals.height - 24) / parts.length;
  const fill = (label) => colorOf(label, model.classes);
  parts.forEach(([name, indices], p) => {
    const box = { x: 8, y: 4 + p * height, w: signals.width - 16, h: height - 6 };
    drawBands(signals.ctx, box, view, live.segments, fill, 0.12);
    drawLines(signals.ctx, box, view, live.times, indices.map((i) => live.values.map((v) => v[i])), CHANNEL_COLORS,
              name);
  });
  drawAxis(signals.ctx, { x: 8, y: signals.height - 18, w: signals.width - 16, h: 18 }, view);
  const timeline = prepare($("live-timeline"));
  const end = live.windows.length ? live.windows[live.windows.length - 1].end : 1;
  const whole = { t0: 0, t1: Math.max(end, 1) };
  const band = { x: 8, y: 4, w: timeline.width - 16, h: timeline.height - 26 };
  drawBands(timeline.ctx, band, whole, live.segments, fill, 0.85, true);
  const centres = live.windows.map((w) => (w.start + w.end) / 2);
  drawLines(timeline.ctx, band, whole, centres, [live.windows.map((w) => w.confidence)], ["#1d232a"], "confidence",
            [0, 1]);
  drawAxis(timeline.ctx, { x: 8, y: timeline.height - 20, w: timeline.width - 16, h: 18 }, whole);
}

// ---------------------------------------------------------------- review view
const review = { data: null, track: [], view: { t0: 0, t1: 1 }, span: null, dragging: false, times: [] };
const REVIEW_BOXES = { confidence: 44, track: 34, axis: 20 };

async function loadRecordings(choose = null) {
  const list = await api("/api/recordings");
  $("review-recording").replaceChildren(...list.map((path) => new Option(path, path)));
  if (choose) $("review-recording").value = choose;
}

async function openRecording(path) {
  showError(null);
  $("review-status").textContent = `${path}: predicting…`;
  try {
    const data = await api(`/api/review?path=${encodeURIComponent(path)}`);
    review.data = data;
    review.times = data.values.map((_, i) => i * data.step);
    review.track = data.labels ?? segmentsOf(data.windows).map(({ start, end, label }) => ({ start, end, label }));
    review.view = { t0: 0, t1: data.duration };
    review.span = null;
    const labels = [...new Set([...data.classes, ...review.track.map((s) => s.label)])];
    $("span-label").replaceChildren(...labels.map((label) => new Option(label, label)));
    legend($("review-legend"), labels, data.classes);
    $("review-status").textContent = `${path}: ${data.windows.length} windows, ${data.duration.toFixed(1)} s` +
      (data.labels ? `, labels from ${data.labels_file}` : ", labels from the model's timeline");
    showSpan();
    showTrack();
  } catch (error) {
    $("review-status").textContent = `${path}: not opened`;
    showError(error);
  }
}

function reviewBoxes(width, height) {
  const { confidence, track, axis } = REVIEW_BOXES;
  const parts = groups(review.data.channels);
  const signalHeight = (height - confidence - track - axis - 8) / parts.length;
  const x = 8, w = width - 16;
  return {
    signals: parts.map(([name, indices], p) => ({ name, indices, box: { x, y: 4 + p * signalHeight, w, h: signalHeight - 6 } })),
    confidence: { x, y: height - confidence - track - axis, w, h: confidence - 6 },
    track: { x, y: height - track - axis, w, h: track - 4 },
    axis: { x, y: height - axis, w, h: axis },
    all: { x, y: 0, w, h: height },
  };
}

function drawReview() {
  const { ctx, width, height } = prepare($("review-plot"));
  if (!review.data) return;
  const boxes = reviewBoxes(width, height);
  const { data, view } = review;
  const fill = (label) => colorOf(label, data.classes);
  const predicted = segmentsOf(data.windows);
  for (const { name, indices, box } of boxes.signals) {
    drawBands(ctx, box, view, predicted, fill, 0.16);
    drawLines(ctx, box, view, review.times, indices.map((i) => data.values.map((v) => v[i])), CHANNEL_COLORS, name);
  }
  drawBands(ctx, boxes.confidence, view, predicted, fill, 0.5);
  drawLines(ctx, boxes.confidence, view, data.windows.map((w) => (w.start + w.end) / 2),
            [data.windows.map((w) => w.confidence)], ["#1d232a"], "predicted activity and confidence", [0, 1]);
  ctx.fillStyle = "#eef1f4";
  ctx.fillRect(boxes.track.x, boxes.track.y, boxes.track.w, boxes.track.h);
  drawBands(ctx, boxes.track, view, review.track, fill, 0.9, true);
  drawAxis(ctx, boxes.axis, view);
  if (review.span) {
    const [a, b] = review.span;
    ctx.fillStyle = "rgba(29, 35, 42, 0.18)";
    ctx.fillRect(xOf(a, view, boxes.all), 0, xOf(b, view, boxes.all) - xOf(a, view, boxes.all), height);
  }
}

function showSpan() {
  const [a, b] = review.span || ["", ""];
  $("span-start").value = a === "" ? "" : a.toFixed(2);
  $("span-end").value = b === "" ? "" : b.toFixed(2);
  drawReview();
}

function showTrack() {
  const rows = review.track.map((s) => {
    const row = document.createElement("tr");
    row.replaceChildren(...[s.start.toFixed(2), s.end.toFixed(2), s.label].map(
      (text) => Object.assign(document.createElement("td"), { textContent: text })));
    return row;
  });
  $("review-labels").tBodies[0].replaceChildren(...rows);
  drawReview();
}

function relabel(track, a, b, label) {
  // The track with [a, b) given `label` (none: unlabelled): intervals cut around it, neighbours of one label merged.
  const kept = [];
  for (const s of track) {
    if (s.end <= a || s.start >= b) kept.push(s);
    else {
      if (s.start < a) kept.push({ ...s, end: a });
      if (s.end > b) kept.push({ ...s, start: b });
    }
  }
  if (label) kept.push({ start: a, end: b, label });
  kept.sort((x, y) => x.start - y.start);
  return kept.reduce((merged, s) => {
    const last = merged[merged.length - 1];
    if (last && last.label === s.label && s.start <= last.end + 1e-9) last.end = Math.max(last.end, s.end);
    else merged.push({ ...s });
    return merged;
  }, []);
}

function pointerTime(event) {
  const rect = $("review-plot").getBoundingClientRect();
  const box = reviewBoxes(rect.width, rect.height).all;
  const t = timeAt(event.clientX - rect.left, review.view, box);
  return Math.round(Math.min(Math.max(t, 0), review.data.duration) * 50) / 50;
}

function spanFromInputs() {
  const a = parseFloat($("span-start").value), b = parseFloat($("span-end").value);
  if (!(b > a)) throw new Error("select a span first: drag across the signals, or type its start and end");
  return [Math.max(0, a), Math.min(b, review.data.duration)];
}

function reviewControls() {
  const canvas = $("review-plot");
  canvas.addEventListener("mousedown", (event) => {
    if (!review.data) return;
    review.dragging = true;
    review.anchor = pointerTime(event);
    review.span = null;
  });
  canvas.addEventListener("mousemove", (event) => {
    if (!review.dragging) return;
    const t = pointerTime(event);
    review.span = [Math.min(review.anchor, t), Math.max(review.anchor, t)];
    showSpan();
  });
  window.addEventListener("mouseup", () => { review.dragging = false; });
  for (const id of ["span-start", "span-end"]) {
    $(id).addEventListener("change", () => {
      try { review.span = spanFromInputs(); drawReview(); } catch { review.span = null; }
    });
  }
  const act = (id, action) => $(id).addEventListener("click", () => {
    showError(null);
    if (!review.data) return showError("open a recording first");
    try { action(); } catch (error) { showError(error); }
  });
  act("span-set", () => {
    const [a, b] = spanFromInputs();
    const label = $("span-new-label").value.trim() || $("span-label").value;
    review.track = relabel(review.track, a, b, label);
    showTrack();
  });
  act("span-clear", () => {
    const [a, b] = spanFromInputs();
    review.track = relabel(review.track, a, b, null);
    showTrack();
  });
  act("zoom-in", () => { const [a, b] = spanFromInputs(); review.view = { t0: a, t1: b }; drawReview(); });
  act("zoom-out", () => { review.view = { t0: 0, t1: review.data.duration }; drawReview(); });
  act("labels-save", async () => {
    try {
      const body = JSON.stringify({ path: review.data.path, intervals: review.track });
      const saved = await api("/api/labels", { method: "POST", headers: { "Content-Type": "application/json" }, body });
      $("review-status").textContent = `saved ${saved.saved} (${saved.intervals} intervals)`;
    } catch (error) {
      showError(error);
    }
  });
  $("review-open").addEventListener("click", () => openRecording($("review-recording").value));
  $("review-upload").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    if (!file) return;
    showError(null);
    $("review-status").textContent = `uploading ${file.name}…`;
    try {
      const uploaded = await api(`/api/recordings?name=${encodeURIComponent(file.name)}`, { method: "PUT", body: file });
      await loadRecordings(uploaded.path);
      await openRecording(uploaded.path);
    } catch (error) {
      $("review-status").textContent = `${file.name}: not uploaded`;
      showError(error);
    }
  });
}

// ---------------------------------------------------------------- both
function showView() {
  const name = location.hash === "#review" ? "review" : "live";
  for (const view of ["live", "review"]) {
    $(view).hidden = view !== name;
    $(`tab-${view}`).classList.toggle("active", view === name);
  }
  if (name === "review") drawReview(); else drawLive();
}

async function start() {
  try {
    model = await api("/api/model");
  } catch (error) {
    return showError(error);
  }
  $("model-info").textContent = `${model.source} · ${model.rate} Hz · windows of ${model.window} every ${model.step}`;
  legend($("live-legend"), model.classes, model.classes);
  reviewControls();
  $("live-stream").addEventListener("change", (event) => watch(event.target.value));
  window.addEventListener("hashchange", showView);
  window.addEventListener("resize", showView);
  showView();
  refreshStreams();
  setInterval(refreshStreams, 2000);
  loadRecordings().catch(showError);
}

start();
