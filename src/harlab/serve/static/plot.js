// harlab serve's plots: a few canvas drawing helpers written for this page (no library, nothing fetched).
// A box is {x, y, w, h} in CSS pixels; a view is the time range {t0, t1} shown across a box's width.

const PALETTE = ["#2f7ed8", "#e4572e", "#17a398", "#f3a712", "#8e5ea2", "#a8c256", "#d1495b", "#3c6e71",
                 "#ff8c61", "#6a4c93", "#1982c4", "#8ac926"];
export const CHANNEL_COLORS = ["#d1495b", "#17a398", "#2f7ed8"];

export function colorOf(label, classes) {
  let index = classes.indexOf(label);
  if (index < 0) index = [...label].reduce((sum, c) => sum + c.charCodeAt(0), 0);
  return PALETTE[index % PALETTE.length];
}

export function prepare(canvas) {
  // Size the canvas to its CSS box at the screen's pixel ratio; the 2D context, cleared, and the box's size.
  const rect = canvas.getBoundingClientRect();
  const ratio = window.devicePixelRatio || 1;
  canvas.width = Math.max(1, Math.round(rect.width * ratio));
  canvas.height = Math.max(1, Math.round(rect.height * ratio));
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, rect.width, rect.height);
  ctx.font = "11px system-ui, sans-serif";
  return { ctx, width: rect.width, height: rect.height };
}

export function xOf(t, view, box) {
  return box.x + ((t - view.t0) / (view.t1 - view.t0 || 1)) * box.w;
}

export function timeAt(x, view, box) {
  return view.t0 + ((x - box.x) / box.w) * (view.t1 - view.t0);
}

export function drawBands(ctx, box, view, spans, fill, alpha, withText = false) {
  // Spans {start, end, label} as coloured bands over the box; their labels written where they fit.
  ctx.save();
  for (const span of spans) {
    if (span.end < view.t0 || span.start > view.t1) continue;
    const x0 = Math.max(box.x, xOf(span.start, view, box));
    const x1 = Math.min(box.x + box.w, xOf(span.end, view, box));
    ctx.globalAlpha = alpha;
    ctx.fillStyle = fill(span.label);
    ctx.fillRect(x0, box.y, Math.max(1, x1 - x0), box.h);
    if (withText && x1 - x0 > ctx.measureText(span.label).width + 6) {
      ctx.globalAlpha = 1;
      ctx.fillStyle = "#fff";
      ctx.fillText(span.label, x0 + 3, box.y + box.h / 2 + 4);
    }
  }
  ctx.restore();
}

export function drawLines(ctx, box, view, times, series, colors, title, range = null) {
  // Lines of `series` (arrays of values at `times`) in the box, scaled to their range (or `range`).
  const visible = times.map((t, i) => [t, i]).filter(([t]) => t >= view.t0 && t <= view.t1).map(([, i]) => i);
  let [low, high] = range || [Infinity, -Infinity];
  if (!range) for (const values of series) for (const i of visible) {
    low = Math.min(low, values[i]);
    high = Math.max(high, values[i]);
  }
  if (!(high > low)) { low -= 1; high += 1; }
  const yOf = (v) => box.y + box.h - ((v - low) / (high - low)) * box.h;
  ctx.save();
  ctx.lineWidth = 1.2;
  series.forEach((values, s) => {
    ctx.strokeStyle = colors[s % colors.length];
    ctx.beginPath();
    visible.forEach((i, n) => {
      const x = xOf(times[i], view, box), y = yOf(values[i]);
      n ? ctx.lineTo(x, y) : ctx.moveTo(x, y);
    });
    ctx.stroke();
  });
  ctx.fillStyle = "#4a5866";
  ctx.fillText(`${title}  [${low.toFixed(2)}, ${high.toFixed(2)}]`, box.x + 4, box.y + 12);
  ctx.strokeStyle = "#d6dde5";
  ctx.strokeRect(box.x, box.y, box.w, box.h);
  ctx.restore();
}

export function drawAxis(ctx, box, view) {
  // Time ticks (seconds) along the top of the box.
  const span = view.t1 - view.t0 || 1;
  const step = [0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600].find((s) => span / s <= 12) || 7200;
  ctx.save();
  ctx.fillStyle = "#4a5866";
  ctx.strokeStyle = "#9aa9b8";
  for (let t = Math.ceil(view.t0 / step) * step; t <= view.t1; t += step) {
    const x = xOf(t, view, box);
    ctx.beginPath();
    ctx.moveTo(x, box.y);
    ctx.lineTo(x, box.y + 4);
    ctx.stroke();
    ctx.fillText(`${+t.toFixed(1)} s`, x + 2, box.y + 14);
  }
  ctx.restore();
}

export function legend(element, labels, classes) {
  element.replaceChildren(...labels.map((label) => {
    const item = document.createElement("span");
    item.textContent = label;
    item.style.setProperty("--color", colorOf(label, classes));
    return item;
  }));
}
