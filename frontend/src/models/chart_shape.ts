/** Pure shaping of the model dashboard's JSON into the Models page's charts (rows by datasets,
 * as ./shape.ts does for the lead's dashboard). No DOM, no Chart.js: tested by
 * __tests__/model_shape.test.ts. */

import type { Dataset, Row, Series } from "../dashboards/shape";
import type {
  AcquisitionScores,
  CurvePoint,
  ModelDashboard,
  VersionClassMetrics,
  VersionUsefulness,
} from "./chart_types";

type MetricPart = { key: string; label: string; color: string };

/** The validation metrics drawn against labels (keys of CurvePoint.metrics). */
export const CURVE_METRICS: MetricPart[] = [
  { key: "boxes.map_50", label: "Box mAP@0.5", color: "#f28e2b" },
  { key: "findings.auroc_macro", label: "Finding AUROC", color: "#59a14f" },
  { key: "reports.finding_f1_micro", label: "Report finding F1", color: "#e15759" },
  { key: "reports.rouge_l_f_beta1.2", label: "Report ROUGE-L", color: "#b07aa1" },
];

const PRIMARY_COLOR = "#4e79a7";
/** Colours of the metrics the page does not list (a CT project's). */
const OTHER_COLORS = ["#76b7b2", "#edc948", "#9c755f", "#ff9da7"];

/** A metric's name as a model owner reads it: the server's (``names``, the dashboard's
 * ``metric_names``: a CT project's "FROC mean (LUNA16)"), else the page's, else its key. */
export function metricName(key: string, names: Record<string, string> = {}): string {
  if (names[key]) return names[key];
  if (key === "combined") return "combined";
  return CURVE_METRICS.find((m) => m.key === key)?.label ?? key;
}

/** Scores to three decimals: what the tables show and the charts plot. */
export function round3(value: number | null | undefined): number | null {
  return value === null || value === undefined ? null : Math.round(value * 1000) / 1000;
}

const hasValue = (d: Dataset) => d.values.some((v) => v !== null);

/** One row per version (by training labels), one dataset per metric: the promotion metric
 * first, then the others that any version measured (the promotion metric is not repeated). */
export function learningCurve(dashboard: ModelDashboard): Series {
  const points = dashboard.learning_curve;
  const names = dashboard.metric_names ?? {};
  const primary: Dataset = {
    key: "primary",
    label: `Promotion metric (${metricName(dashboard.promotion_metric, names)})`,
    color: PRIMARY_COLOR,
    values: points.map((p) => round3(p.primary)),
  };
  const listed = new Set(CURVE_METRICS.map((m) => m.key));
  const unlisted = [...new Set(points.flatMap((p) => Object.keys(p.metrics)))].filter((k) => !listed.has(k));
  const parts: MetricPart[] = [
    ...CURVE_METRICS,
    ...unlisted.map((key, i) => ({ key, label: key, color: OTHER_COLORS[i % OTHER_COLORS.length] })),
  ];
  const others = parts
    .filter((m) => m.key !== dashboard.promotion_metric)
    .map((m) => ({ ...m, label: metricName(m.key, names), values: points.map((p) => round3(p.metrics[m.key])) }))
    .filter(hasValue);
  return { rows: points.map(versionRow), datasets: [primary, ...others] };
}

function versionRow(point: CurvePoint): Row {
  const serving = point.serving ? " · serving" : "";
  return { key: `v${point.number}`, label: `v${point.number} · ${point.labels} labels${serving}` };
}

/** The learning curve's points on a numeric axis: x = training labels, y = each dataset's
 * value, and which point is the serving version (drawn larger). */
export function curvePoints(
  dashboard: ModelDashboard,
  series: Series,
): { datasets: { x: number; y: number | null }[][]; serving: boolean[] } {
  const labels = dashboard.learning_curve.map((p) => p.labels);
  return {
    datasets: series.datasets.map((d) => d.values.map((y, i) => ({ x: labels[i], y }))),
    serving: dashboard.learning_curve.map((p) => p.serving),
  };
}

/** The version the per-class chart shows first: the chosen one if it still has metrics, else
 * the serving one, else the newest. */
export function pickVersion(perClass: VersionClassMetrics[], chosen: number | null): number | null {
  const numbers = perClass.map((v) => v.number);
  if (chosen !== null && numbers.includes(chosen)) return chosen;
  return perClass.find((v) => v.serving)?.number ?? numbers[0] ?? null;
}

const CLASS_METRICS = [
  { key: "ap_50", label: "Box AP@0.5", color: "#f28e2b" },
  { key: "auroc", label: "Finding AUROC", color: "#59a14f" },
  { key: "f1", label: "Report finding F1", color: "#e15759" },
] as const;

/** One version's metrics per finding class; a metric no class has is left out. */
export function perClass(perClass: VersionClassMetrics[], number: number | null): Series {
  const version = perClass.find((v) => v.number === number);
  if (!version) return { rows: [], datasets: [] };
  const classes = version.classes;
  return {
    rows: classes.map((c) => ({ key: c.finding, label: c.name })),
    datasets: CLASS_METRICS.map((m) => ({
      key: m.key,
      label: m.label,
      color: m.color,
      values: classes.map((c) => round3(c[m.key])),
    })).filter(hasValue),
  };
}

/** "0.1", "0.25": a bin edge without trailing zeros. */
export function edge(value: number): string {
  return String(Math.round(value * 100) / 100);
}

/** The open cases per score bin, then one more bar: the open cases with no score yet. */
export function scoreHistogram(acquisition: AcquisitionScores): Series {
  const bins = acquisition.bins;
  const rows: Row[] = bins.map((b) => ({
    key: `${edge(b.low)}-${edge(b.high)}`,
    label: `${edge(b.low)}–${edge(b.high)}`,
  }));
  rows.push({ key: "unscored", label: "no score" });
  return {
    rows,
    datasets: [
      {
        key: "scored",
        label: "Open cases by score",
        color: "#4e79a7",
        values: [...bins.map((b) => b.count), null],
      },
      {
        key: "unscored",
        label: "No score yet",
        color: "#a0aec0",
        values: [...bins.map(() => null), acquisition.unscored],
      },
    ],
  };
}

export function histogramTitle(acquisition: AcquisitionScores): string {
  const by = acquisition.version === null ? "no serving version" : `v${acquisition.version}`;
  return `Acquisition scores of the ${acquisition.open_cases} open cases · ${by}`;
}

function usefulnessRows(usefulness: VersionUsefulness[]): Row[] {
  return usefulness.map((u) => ({
    key: `v${u.number}`,
    label: `v${u.number}${u.serving ? " (serving)" : ""} · ${u.annotations} case${u.annotations === 1 ? "" : "s"}`,
  }));
}

const percent = (share: number | null) => (share === null ? null : Math.round(share * 1000) / 10);

/** Per version, its suggested boxes accepted unchanged, edited and rejected, in percent of its
 * suggested boxes the annotators decided on (null: it suggested none). */
export function suggestionShares(usefulness: VersionUsefulness[]): Series {
  const parts = [
    { key: "accepted", label: "Accepted unchanged", color: "#2f855a", share: "accepted_share" },
    { key: "edited", label: "Edited", color: "#2b6cb0", share: "edited_share" },
    { key: "rejected", label: "Rejected", color: "#c53030", share: "rejected_share" },
  ] as const;
  return {
    rows: usefulnessRows(usefulness),
    datasets: parts.map((p) => ({
      key: p.key,
      label: p.label,
      color: p.color,
      values: usefulness.map((u) => percent(u.boxes[p.share])),
    })),
  };
}

/** Per version, what annotators had to add or change per case: boxes the model missed, and the
 * report's word edit distance from its draft. */
export function corrections(usefulness: VersionUsefulness[]): Series {
  return {
    rows: usefulnessRows(usefulness),
    datasets: [
      {
        key: "missed",
        label: "Boxes added (model missed) per case",
        color: "#805ad5",
        values: usefulness.map((u) =>
          u.missed_per_case === null ? null : Math.round(u.missed_per_case * 100) / 100,
        ),
      },
      {
        key: "report_edits",
        label: "Report edit distance",
        color: "#dd6b20",
        values: usefulness.map((u) => round3(u.report_edit_distance)),
      },
    ],
  };
}
