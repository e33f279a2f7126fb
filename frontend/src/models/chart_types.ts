/** The model dashboard endpoint's JSON (active_learning/api/model_dashboard_views.py). */

import type { SuggestionUse } from "../dashboards/types";

/** One version on the learning curve: validation metrics against its training labels. */
export type CurvePoint = {
  number: number;
  status: string;
  serving: boolean;
  labels: number;
  validation_labels: number | null;
  /** The project's promotion metric. */
  primary: number | null;
  /** By dotted key: boxes.map_50, findings.auroc_macro, reports.finding_f1_micro, ... (a CT
   * project's: froc.froc_mean, boxes.map_at_match_iou, boxes.map_50) */
  metrics: Record<string, number | null>;
};

export type ClassMetrics = {
  finding: string;
  name: string;
  ap_50: number | null;
  auroc: number | null;
  f1: number | null;
};

export type VersionClassMetrics = { number: number; serving: boolean; classes: ClassMetrics[] };

export type ScoreBin = { low: number; high: number; count: number };

export type AcquisitionScores = {
  /** The serving version, null when none serves. */
  version: number | null;
  strategy: string;
  open_cases: number;
  scored: number;
  unscored: number;
  bins: ScoreBin[];
};

export type VersionUsefulness = {
  number: number;
  serving: boolean;
  /** Submitted annotations whose case showed this version's suggestion. */
  annotations: number;
  boxes: SuggestionUse;
  missed_per_case: number | null;
  report_cases: number;
  report_edit_distance: number | null;
};

/** GET /api/projects/{id}/model-dashboard/ */
export type ModelDashboard = {
  promotion_metric: string;
  serving: number | null;
  learning_curve: CurvePoint[];
  /** Readable names of metrics by dotted key where the page's own do not fit (a CT project's:
   * "FROC mean (LUNA16)", "mAP at 3D IoU ≥ 0.1"); empty otherwise. */
  metric_names?: Record<string, string>;
  /** Newest version first. */
  per_class: VersionClassMetrics[];
  acquisition: AcquisitionScores;
  /** Newest version first. */
  usefulness: VersionUsefulness[];
};
