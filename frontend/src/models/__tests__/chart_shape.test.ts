import { describe as group, expect, it } from "vitest";
import {
  corrections,
  curvePoints,
  edge,
  histogramTitle,
  learningCurve,
  metricName,
  perClass,
  pickVersion,
  round3,
  scoreHistogram,
  suggestionShares,
} from "../chart_shape";
import type { ModelDashboard, VersionUsefulness } from "../chart_types";
import { describe, isEmpty } from "../../dashboards/shape";

const metrics = (map: number | null, auroc: number | null, f1: number | null, rouge: number | null) => ({
  "boxes.map_50": map,
  "findings.auroc_macro": auroc,
  "reports.finding_f1_micro": f1,
  "reports.rouge_l_f_beta1.2": rouge,
});

const use = (accepted: number, edited: number, rejected: number, drawn: number) => {
  const suggested = accepted + edited + rejected;
  const share = (n: number) => (suggested ? n / suggested : null);
  return {
    accepted, edited, rejected, drawn, suggested,
    accepted_share: share(accepted), edited_share: share(edited), rejected_share: share(rejected),
  };
};

const USEFULNESS: VersionUsefulness[] = [
  { number: 3, serving: false, annotations: 1, boxes: use(0, 0, 2, 0), missed_per_case: 0, report_cases: 0, report_edit_distance: null },
  { number: 2, serving: true, annotations: 3, boxes: use(2, 1, 1, 2), missed_per_case: 0.6667, report_cases: 2, report_edit_distance: 0.33333 },
  { number: 1, serving: false, annotations: 1, boxes: use(0, 0, 0, 1), missed_per_case: 1, report_cases: 1, report_edit_distance: 0.1667 },
];

const DASHBOARD: ModelDashboard = {
  promotion_metric: "combined",
  serving: 2,
  learning_curve: [
    { number: 1, status: "retired", serving: false, labels: 4, validation_labels: 3, primary: 0.4, metrics: metrics(0.2, 0.6, 0.4, null) },
    { number: 2, status: "promoted", serving: true, labels: 8, validation_labels: 3, primary: 0.63333, metrics: metrics(0.5, 0.8, 0.6, null) },
    { number: 3, status: "candidate", serving: false, labels: 20, validation_labels: 3, primary: 0.9, metrics: metrics(null, 0.9, null, null) },
  ],
  per_class: [
    { number: 3, serving: false, classes: [{ finding: "nodule", name: "Nodule", ap_50: null, auroc: 0.9, f1: null }] },
    {
      number: 2,
      serving: true,
      classes: [
        { finding: "nodule", name: "Nodule", ap_50: 0.6, auroc: 0.8, f1: 0.5 },
        { finding: "mass", name: "Mass", ap_50: 0.4, auroc: 0.8, f1: null },
      ],
    },
  ],
  acquisition: {
    version: 2,
    strategy: "hybrid",
    open_cases: 7,
    scored: 5,
    unscored: 2,
    bins: [
      { low: 0, high: 0.5, count: 3 },
      { low: 0.5, high: 1, count: 2 },
    ],
  },
  usefulness: USEFULNESS,
};

group("learningCurve", () => {
  it("has a row per version and the promotion metric first, measured metrics only", () => {
    const series = learningCurve(DASHBOARD);
    expect(series.rows).toEqual([
      { key: "v1", label: "v1 · 4 labels" },
      { key: "v2", label: "v2 · 8 labels · serving" },
      { key: "v3", label: "v3 · 20 labels" },
    ]);
    expect(series.datasets.map((d) => [d.key, d.label, d.values])).toEqual([
      ["primary", "Promotion metric (combined)", [0.4, 0.633, 0.9]],
      ["boxes.map_50", "Box mAP@0.5", [0.2, 0.5, null]],
      ["findings.auroc_macro", "Finding AUROC", [0.6, 0.8, 0.9]],
      ["reports.finding_f1_micro", "Report finding F1", [0.4, 0.6, null]],
    ]); // ROUGE-L: no version measured it
  });

  it("does not repeat the promotion metric", () => {
    const series = learningCurve({ ...DASHBOARD, promotion_metric: "findings.auroc_macro" });
    expect(series.datasets[0].label).toBe("Promotion metric (Finding AUROC)");
    expect(series.datasets.map((d) => d.key)).toEqual(["primary", "boxes.map_50", "reports.finding_f1_micro"]);
  });

  it("puts each point at its training labels and marks the serving version", () => {
    const points = curvePoints(DASHBOARD, learningCurve(DASHBOARD));
    expect(points.serving).toEqual([false, true, false]);
    expect(points.datasets[0]).toEqual([
      { x: 4, y: 0.4 },
      { x: 8, y: 0.633 },
      { x: 20, y: 0.9 },
    ]);
    expect(points.datasets[1][2]).toEqual({ x: 20, y: null });
  });

  it("names a CT project's metrics in words, never by their keys", () => {
    const ct = (froc: number, atMatch: number, at50: number | null) => ({
      "froc.froc_mean": froc,
      "boxes.map_at_match_iou": atMatch,
      "boxes.map_50": at50,
    });
    const series = learningCurve({
      ...DASHBOARD,
      promotion_metric: "froc.froc_mean",
      learning_curve: [
        { number: 1, status: "retired", serving: false, labels: 2, validation_labels: 2, primary: 0.3, metrics: ct(0.3, 0.25, null) },
        { number: 2, status: "promoted", serving: true, labels: 4, validation_labels: 2, primary: 0.5, metrics: ct(0.5, 0.4, 0.1) },
      ],
      // As the dashboard's API names them (active_learning.services.metric_schema).
      metric_names: {
        combined: "combined (FROC mean and mAP at 3D IoU ≥ 0.1)",
        "froc.froc_mean": "FROC mean (LUNA16)",
        "boxes.map_at_match_iou": "mAP at 3D IoU ≥ 0.1",
        "boxes.map_50": "mAP at 3D IoU ≥ 0.5",
      },
    });
    expect(series.datasets.map((d) => [d.key, d.label, d.values])).toEqual([
      ["primary", "Promotion metric (FROC mean (LUNA16))", [0.3, 0.5]],
      ["boxes.map_50", "mAP at 3D IoU ≥ 0.5", [null, 0.1]],
      ["boxes.map_at_match_iou", "mAP at 3D IoU ≥ 0.1", [0.25, 0.4]],
    ]);
    expect(new Set(series.datasets.map((d) => d.color)).size).toBe(3);
    const text = describe("Learning curve", series);
    expect(text).not.toMatch(/froc\.|boxes\./);
  });

  it("reads out in the aria-label", () => {
    const text = describe("Learning curve", learningCurve(DASHBOARD));
    expect(text).toContain("v2 · 8 labels · serving: Promotion metric (combined) 0.633");
    expect(text).toContain("Box mAP@0.5 none");
  });
});

group("perClass", () => {
  it("picks the chosen version, else the serving one, else the newest", () => {
    expect(pickVersion(DASHBOARD.per_class, 3)).toBe(3);
    expect(pickVersion(DASHBOARD.per_class, 7)).toBe(2);
    expect(pickVersion(DASHBOARD.per_class, null)).toBe(2);
    expect(pickVersion([{ ...DASHBOARD.per_class[0] }], null)).toBe(3);
    expect(pickVersion([], null)).toBeNull();
  });

  it("has a row per class and leaves out metrics no class has", () => {
    const series = perClass(DASHBOARD.per_class, 2);
    expect(series.rows).toEqual([
      { key: "nodule", label: "Nodule" },
      { key: "mass", label: "Mass" },
    ]);
    expect(series.datasets.map((d) => [d.key, d.values])).toEqual([
      ["ap_50", [0.6, 0.4]],
      ["auroc", [0.8, 0.8]],
      ["f1", [0.5, null]],
    ]);
    expect(perClass(DASHBOARD.per_class, 3).datasets.map((d) => d.key)).toEqual(["auroc"]);
    expect(isEmpty(perClass(DASHBOARD.per_class, null))).toBe(true);
  });
});

group("scoreHistogram", () => {
  it("counts the open cases per bin, then those without a score", () => {
    const series = scoreHistogram(DASHBOARD.acquisition);
    expect(series.rows.map((r) => r.label)).toEqual(["0–0.5", "0.5–1", "no score"]);
    expect(series.rows.map((r) => r.key)).toEqual(["0-0.5", "0.5-1", "unscored"]);
    expect(series.datasets.map((d) => d.values)).toEqual([
      [3, 2, null],
      [null, null, 2],
    ]);
    expect(histogramTitle(DASHBOARD.acquisition)).toBe("Acquisition scores of the 7 open cases · v2");
  });

  it("shows only the unscored cases when no version serves", () => {
    const none = { version: null, strategy: "hybrid", open_cases: 4, scored: 0, unscored: 4, bins: [] };
    const series = scoreHistogram(none);
    expect(series.rows).toEqual([{ key: "unscored", label: "no score" }]);
    expect(series.datasets[1].values).toEqual([4]);
    expect(histogramTitle(none)).toBe("Acquisition scores of the 4 open cases · no serving version");
  });

  it("writes bin edges without float noise", () => {
    expect([edge(0.30000000000000004), edge(0.1), edge(2), edge(0.25)]).toEqual(["0.3", "0.1", "2", "0.25"]);
  });
});

group("usefulness", () => {
  it("gives each version's suggested boxes in percent, null when it suggested none", () => {
    const series = suggestionShares(USEFULNESS);
    expect(series.rows.map((r) => r.label)).toEqual(["v3 · 1 case", "v2 (serving) · 3 cases", "v1 · 1 case"]);
    expect(series.datasets.map((d) => [d.key, d.values])).toEqual([
      ["accepted", [0, 50, null]],
      ["edited", [0, 25, null]],
      ["rejected", [100, 25, null]],
    ]);
  });

  it("gives the missed boxes and report edits per case", () => {
    const series = corrections(USEFULNESS);
    expect(series.datasets.map((d) => [d.key, d.values])).toEqual([
      ["missed", [0, 0.67, 1]],
      ["report_edits", [null, 0.333, 0.167]],
    ]);
  });
});

group("helpers", () => {
  it("names metrics and rounds scores", () => {
    expect(metricName("combined")).toBe("combined");
    expect(metricName("reports.rouge_l_f_beta1.2")).toBe("Report ROUGE-L");
    expect(metricName("reports.bleu_4")).toBe("reports.bleu_4");
    expect([round3(0.12345), round3(null), round3(undefined)]).toEqual([0.123, null, null]);
  });
});
