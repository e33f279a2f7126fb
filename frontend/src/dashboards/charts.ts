/** Chart.js for the dashboards: only the pieces the charts use are registered (the rest of
 * Chart.js is tree-shaken away), and one config builder per kind of chart. */

import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  type ChartConfiguration,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
} from "chart.js";
import type { Series } from "./shape";

Chart.register(
  BarController,
  BarElement,
  CategoryScale,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Legend,
  Tooltip,
);

/** bar: vertical bars; hbar: horizontal; stacked-*: datasets stacked; line: one line each. */
export type ChartKind = "line" | "bar" | "hbar" | "stacked-bar" | "stacked-hbar";

/** Text and grid colours follow the page (light or dark). */
export function followPageColors(page: HTMLElement): void {
  Chart.defaults.color = getComputedStyle(page).color || "#4a5568";
  Chart.defaults.borderColor = "rgba(136, 136, 136, 0.25)";
  Chart.defaults.font.size = 11;
}

export function chartConfig(
  kind: ChartKind,
  series: Series,
  axisTitle?: string,
): ChartConfiguration<"bar" | "line"> {
  const horizontal = kind === "hbar" || kind === "stacked-hbar";
  const stacked = kind === "stacked-bar" || kind === "stacked-hbar";
  const many = series.rows.length > 31;
  const valueAxis = {
    stacked,
    beginAtZero: true,
    ticks: { precision: axisTitle ? undefined : 0, maxTicksLimit: 7 },
    title: { display: Boolean(axisTitle), text: axisTitle ?? "" },
  };
  const categoryAxis = {
    stacked,
    grid: { display: false },
    ticks: { autoSkip: true, maxRotation: 0, autoSkipPadding: 6 },
  };
  const datasets = series.datasets.map((d) => ({
    label: d.label,
    data: d.values,
    backgroundColor: d.color,
    borderColor: d.color,
    ...(kind === "line"
      ? { borderWidth: 2, pointRadius: many ? 0 : 2, pointHoverRadius: 4, tension: 0 }
      : { borderWidth: 0, maxBarThickness: horizontal ? 26 : 36 }),
  }));
  return {
    type: kind === "line" ? "line" : "bar",
    data: { labels: series.rows.map((r) => r.label), datasets },
    options: {
      indexAxis: horizontal ? "y" : "x",
      responsive: true,
      maintainAspectRatio: false,
      // Leads look at numbers, not motion; also keeps screenshots and tests deterministic.
      animation: false,
      interaction: { mode: "index", intersect: false, axis: horizontal ? "y" : "x" },
      plugins: {
        legend: {
          // A stack of one still names its part (the one annotator of the window).
          display: series.datasets.length > 1 || (stacked && series.datasets.length > 0),
          position: "bottom",
          labels: { boxWidth: 10, boxHeight: 10, padding: 8 },
        },
        tooltip: { enabled: true },
      },
      scales: horizontal ? { x: valueAxis, y: categoryAxis } : { x: categoryAxis, y: valueAxis },
    },
  };
}

export function drawChart(
  canvas: HTMLCanvasElement,
  kind: ChartKind,
  series: Series,
  axisTitle?: string,
): Chart<"bar" | "line"> {
  return new Chart(canvas, chartConfig(kind, series, axisTitle));
}
