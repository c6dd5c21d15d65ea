// A bar chart of counts per UTC day in plain SVG: one bar a day from the first day with a
// count to the last (days without any drawn as gaps), each bar titled with its day and count.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const HEIGHT = 180; // in pixels: the width is the container's, so text keeps its size
const PAD = { left: 40, right: 10, top: 12, bottom: 26 };
const DAY_MS = 86400000;

function node(tag, attributes, text) {
  const item = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) item.setAttribute(name, String(value));
  if (text !== undefined) item.textContent = text;
  return item;
}

// Every UTC date from `first` to `last` (both "YYYY-MM-DD"), in order.
export function dayRange(first, last) {
  const days = [];
  for (let t = Date.parse(first + "T00:00:00Z"); t <= Date.parse(last + "T00:00:00Z");
    t += DAY_MS) {
    days.push(new Date(t).toISOString().slice(0, 10));
  }
  return days;
}

// Draws `counts` (Map of "YYYY-MM-DD" -> number) into `container`; `what` names the unit.
export function drawDays(container, counts, what) {
  container.replaceChildren();
  const known = [...counts.keys()].sort();
  if (!known.length) return;
  const days = dayRange(known[0], known[known.length - 1]);
  const values = days.map((day) => counts.get(day) || 0);
  const most = Math.max(1, ...values);
  const total = values.reduce((a, b) => a + b, 0);
  const busiest = days[values.indexOf(Math.max(...values))];
  const WIDTH = Math.max(280, Math.round(container.clientWidth || 720));
  const plotWidth = WIDTH - PAD.left - PAD.right;
  const plotHeight = HEIGHT - PAD.top - PAD.bottom;
  const step = plotWidth / days.length;
  const chart = node("svg", {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", class: "chart",
    "aria-label": `${what} per day, ${days[0]} to ${days[days.length - 1]} (UTC): ${total} in `
      + `all, most on ${busiest} (${counts.get(busiest)})`,
  });
  const baseline = PAD.top + plotHeight;
  chart.append(
    node("line", { x1: PAD.left, x2: WIDTH - PAD.right, y1: PAD.top, y2: PAD.top, class: "grid" }),
    node("text", { x: PAD.left - 6, y: PAD.top + 4, "text-anchor": "end", class: "axis" },
      String(most)),
    node("text", { x: PAD.left - 6, y: baseline, "text-anchor": "end", class: "axis" }, "0"),
    node("line", { x1: PAD.left, x2: WIDTH - PAD.right, y1: baseline, y2: baseline,
      class: "base" }));
  days.forEach((day, i) => {
    if (!values[i]) return;
    const height = Math.max(1, (values[i] / most) * plotHeight);
    const bar = node("rect", {
      x: (PAD.left + i * step + step * 0.1).toFixed(2), y: (baseline - height).toFixed(2),
      width: Math.max(1, step * 0.8).toFixed(2), height: height.toFixed(2), class: "bar",
      "data-day": day, "data-count": values[i],
    });
    bar.append(node("title", {}, `${day}: ${values[i]} ${what.toLowerCase()}`));
    chart.append(bar);
  });
  const labels = days.length < 2 ? [0] : WIDTH < 400 || days.length === 2
    ? [0, days.length - 1] : [0, Math.floor(days.length / 2), days.length - 1];
  labels.forEach((i, n) => {
    const anchor = n === 0 ? "start" : n === labels.length - 1 ? "end" : "middle";
    const x = anchor === "start" ? PAD.left : anchor === "end" ? WIDTH - PAD.right
      : PAD.left + (i + 0.5) * step;
    chart.append(node("text", { x: x, y: HEIGHT - 6, "text-anchor": anchor, class: "axis" },
      days[i]));
  });
  container.append(chart);
}
