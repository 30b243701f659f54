// Pulls and pushes per day as an SVG bar chart, drawn with DOM calls (no library, no inline
// style: colours come from console.css classes). A table with the same numbers follows it.

import { svg, h } from "./dom.js";

export function dailyChart(days, series) {
  const width = 640;
  const height = 220;
  const pad = { left: 40, right: 8, top: 12, bottom: 36 };
  const max = Math.max(1, ...days.flatMap((d) => series.map(([key]) => d[key])));
  const slot = (width - pad.left - pad.right) / Math.max(days.length, 1);
  const bar = Math.max(1, (slot - 2) / series.length);
  const y = (v) => pad.top + (height - pad.top - pad.bottom) * (1 - v / max);
  const title = `Pulls and pushes per day, ${days[0]?.day || ""} to ${days[days.length - 1]?.day || ""}`;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title, class: "chart",
    preserveAspectRatio: "xMidYMid meet" });
  chart.append(svg("title", {}, title));
  for (const tick of [0, Math.round(max / 2), max]) {
    chart.append(svg("line", { x1: pad.left, x2: width - pad.right, y1: y(tick), y2: y(tick), class: "grid" }),
      svg("text", { x: pad.left - 4, y: y(tick) + 4, class: "axis", "text-anchor": "end" }, String(tick)));
  }
  days.forEach((d, i) => {
    series.forEach(([key, , cls], j) => {
      const x = pad.left + i * slot + 1 + j * bar;
      chart.append(svg("rect", { x, y: y(d[key]), width: bar, height: y(0) - y(d[key]), class: cls },
        svg("title", {}, `${d.day}: ${d[key]} ${key}`)));
    });
    if (days.length <= 14 || i % Math.ceil(days.length / 7) === 0) {
      chart.append(svg("text", { x: pad.left + i * slot + slot / 2, y: height - pad.bottom + 16, class: "axis",
        "text-anchor": "middle" }, d.day.slice(5)));
    }
  });
  const legend = h("ul", { class: "legend" }, series.map(([key, label, cls]) =>
    h("li", {}, svg("svg", { width: 12, height: 12, "aria-hidden": "true" }, svg("rect", { width: 12, height: 12, class: cls })),
      ` ${label}`)));
  return h("figure", { class: "chart-figure" }, chart, h("figcaption", {}, legend));
}

// Every day of the window, zero where nothing happened (the API lists only days with traffic).
export function everyDay(since, until, rows) {
  const totals = new Map();
  for (const r of rows) {
    const t = totals.get(r.day) || { pulls: 0, pushes: 0 };
    t.pulls += r.pulls;
    t.pushes += r.pushes;
    totals.set(r.day, t);
  }
  const days = [];
  for (let d = new Date(`${since}T00:00:00Z`); d <= new Date(`${until}T00:00:00Z`); d.setUTCDate(d.getUTCDate() + 1)) {
    const day = d.toISOString().slice(0, 10);
    days.push({ day, ...(totals.get(day) || { pulls: 0, pushes: 0 }) });
  }
  return days;
}
