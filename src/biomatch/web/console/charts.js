// Plain SVG bar charts, each with a text alternative and its numbers in a table.

import { element, humanise } from "/shared/words.js";

const SVG = "http://www.w3.org/2000/svg";
// Distinguishable for common colour-vision deficiencies (Okabe-Ito), dark enough on white.
export const COLOURS = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#7a6500", "#56186e", "#444444"];

function svg(tag, attributes = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

function swatch(colour) {
  const box = svg("svg", { width: 14, height: 14, "aria-hidden": "true", class: "swatch-svg" });
  box.append(svg("rect", { width: 14, height: 14, fill: colour, stroke: "#333" }));
  return box;
}

function dataTable(caption, columns, rows) {
  return element("details", {},
    element("summary", { text: `${caption}: the numbers` }),
    element("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": `${caption}: table` },
      element("table", {},
        element("thead", {}, element("tr", {}, ...columns.map((c) => element("th", { scope: "col", text: c })))),
        element("tbody", {}, ...rows.map((row) => element("tr", {}, ...row.map((cell) => element("td", { text: String(cell) }))))))));
}

// One horizontal bar per key of `counts`.
export function barChart(title, counts) {
  const entries = Object.entries(counts).sort((a, b) => b[1] - a[1]);
  const figure = element("figure", { class: "chart" }, element("figcaption", { text: title }));
  if (!entries.length) {
    figure.append(element("p", { class: "hint", text: "None recorded." }));
    return figure;
  }
  const max = Math.max(...entries.map(([, v]) => v));
  const row = 28;
  const width = 640;
  const labelWidth = 230;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${entries.length * row + 8}`, width, height: entries.length * row + 8, role: "img", "aria-label": `${title}: ${entries.map(([k, v]) => `${humanise(k)} ${v}`).join(", ")}` });
  entries.forEach(([key, value], index) => {
    const y = index * row + 4;
    const length = Math.max(2, ((width - labelWidth - 60) * value) / max);
    chart.append(
      svg("text", { x: 0, y: y + 18, "font-size": 14, fill: "#1a1a1a" }, humanise(key).slice(0, 30)),
      svg("rect", { x: labelWidth, y, width: length, height: row - 8, fill: COLOURS[0] }),
      svg("text", { x: labelWidth + length + 6, y: y + 18, "font-size": 14, fill: "#1a1a1a" }, String(value)),
    );
  });
  figure.append(chart, dataTable(title, ["", "count"], entries.map(([k, v]) => [humanise(k), v])));
  return figure;
}

// Stacked vertical bars: one per day, stacked by the series (purpose, gallery).
export function perDayChart(title, days) {
  const dayNames = Object.keys(days).sort();
  const series = [...new Set(dayNames.flatMap((d) => Object.keys(days[d])))].sort();
  const figure = element("figure", { class: "chart" }, element("figcaption", { text: title }));
  if (!dayNames.length) {
    figure.append(element("p", { class: "hint", text: "No searches recorded." }));
    return figure;
  }
  const totals = dayNames.map((d) => Object.values(days[d]).reduce((a, b) => a + b, 0));
  const max = Math.max(...totals);
  const height = 220;
  const bar = Math.min(60, Math.floor(560 / dayNames.length) - 8);
  const width = Math.max(320, 60 + dayNames.length * (bar + 8));
  const label = dayNames.map((d, i) => `${d}: ${totals[i]}`).join(", ");
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height + 40}`, width, height: height + 40, role: "img", "aria-label": `${title}: ${label}` });
  chart.append(svg("line", { x1: 40, y1: height, x2: width, y2: height, stroke: "#333" }));
  chart.append(svg("text", { x: 0, y: 14, "font-size": 13, fill: "#1a1a1a" }, String(max)));
  dayNames.forEach((day, i) => {
    let top = height;
    const x = 48 + i * (bar + 8);
    series.forEach((name, s) => {
      const value = days[day][name] || 0;
      if (!value) return;
      const h = ((height - 20) * value) / max;
      top -= h;
      chart.append(svg("rect", { x, y: top, width: bar, height: h, fill: COLOURS[s % COLOURS.length] }));
    });
    chart.append(svg("text", { x, y: height + 18, "font-size": 12, fill: "#1a1a1a" }, day.slice(5)));
  });
  const legend = element("ul", { class: "legend" }, ...series.map((name, s) => element("li", {}, swatch(COLOURS[s % COLOURS.length]), humanise(name))));
  const rows = dayNames.map((d) => [d, ...series.map((name) => days[d][name] || 0)]);
  figure.append(chart, legend, dataTable(title, ["day", ...series.map(humanise)], rows));
  return figure;
}
