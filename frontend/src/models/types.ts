/** What the Models page reads from the API: the project's loop settings, model versions with the
 * evidence of their promotion check (active_learning/api), and retraining cycles. */

/** Embedded by frontend/templates/frontend/models.html (#models-config). */
export type ModelsConfig = {
  projectId: number;
  canChange: boolean;
  csrfToken: string;
};

export type Project = {
  id: number;
  name: string;
  acquisition_strategy: string;
  promotion_metric: string;
  auto_promote: boolean;
};

export type Strategy = { name: string; description: string };

/** One validation figure of a version, as the server explains it: the value, or why it is none. */
export type Figure = { value: number | null; missing: string };

export type Bootstrap = {
  difference: number | null;
  low: number | null;
  high: number | null;
  confidence: number;
  resamples_used: number;
  beyond_noise: boolean;
};

/** The promotion check run when the version's cycle registered it. */
export type Decision = {
  checked: boolean;
  verdict: string;
  reason?: string;
  metric?: string;
  /** What the metric measures where its name does not say (a CT version's: FROC mean and mAP
   * at 3D IoU froc_iou); empty for a radiograph version. */
  measure?: string;
  candidate_value?: number | null;
  serving_value?: number | null;
  compared_with?: number | null;
  validation_labels: number;
  min_validation_labels: number;
  bootstrap?: Bootstrap | null;
  bootstrap_error?: string | null;
};

export type Evidence = {
  figures?: Record<string, Figure>;
  validation_labels?: number | null;
  /** The 3D IoU a FROC hit needs (a 3D version's; null for a 2D one). */
  froc_iou?: number | null;
  decision?: Decision | null;
};

export type ModelVersion = {
  id: number;
  number: number;
  status: string;
  label_count: number;
  strategy: string | null;
  metrics: { validation?: unknown } | null;
  evidence?: Evidence | null;
  created_at: string;
  promoted_at: string | null;
  model_kind: string;
  code_version: string;
  weights_sha256: string | null;
  /** Training labels of patients who withdrew consent since (issue 17); absent on old answers. */
  withdrawn_labels?: number;
  trained_on_withdrawn_data?: boolean;
};

export type StageProgress = { stage?: string; unit?: "steps" | "cases"; done?: number; total?: number };

export type Estimate = { seconds: number | null; complete: boolean; basis: string };

export type Cycle = {
  id: number;
  status: string;
  stage: string;
  progress: number | string | null;
  trigger: string;
  triggered_by: string | null;
  label_count: number | null;
  model_version_number: number | null;
  created_at: string | null;
  started_at: string | null;
  finished_at: string | null;
  chunks_done: number;
  chunks_total: number;
  stage_progress?: StageProgress | null;
  estimate?: Estimate | null;
  log?: string[];
  error?: string;
};
