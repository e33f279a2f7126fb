/** Shapes of the MedLoop REST API as the workspace reads them, and the page's config. */

export type FindingState = "present" | "absent" | "uncertain";
export type BoxOrigin = "drawn" | "suggested_accepted" | "suggested_edited";

export type FindingClass = { key: string; name: string; color: string; hotkey?: string };
export type ReportSection = { key: string; title: string };
export type LabelSchema = { findings: FindingClass[]; report_sections: ReportSection[] };

/** The JSON the Django page embeds for the workspace. */
export type WorkspaceConfig = {
  projectId: number;
  projectName: string;
  mode: "annotate" | "review";
  username: string;
  roles: string[];
  schema: LabelSchema;
  csrfToken: string;
};

export type Instance = { id: number; rows: number; columns: number; number_of_frames: number; instance_number?: number | null };
export type Series = { id: number; modality: string; description: string; series_number?: number | null; instances: Instance[] };
export type LabResult = {
  code: string;
  name: string;
  value: number | null;
  value_text: string;
  unit: string;
  reference_low: number | null;
  reference_high: number | null;
  observed_at: string | null;
  out_of_range: boolean;
};

/** Box as stored: geometry in image pixels, frame 1-based. */
export type StoredBox = {
  id?: number;
  instance_id: number;
  frame: number;
  x: number;
  y: number;
  width: number;
  height: number;
  finding: string;
  origin: BoxOrigin;
  suggestion_box_id: string;
  /** A 3D box (CT or MR series): [first, last] slices it covers, 1-based in position order,
   * as PUT takes it; the server answers slice_first / slice_last and patient_mm (its
   * coordinates in mm, from the series' geometry). */
  slices?: [number, number];
  slice_first?: number | null;
  slice_last?: number | null;
  patient_mm?: { min: number[]; max: number[]; center: number[]; size: number[] } | null;
};

export type Annotation = {
  id: number;
  case: number;
  annotator: string;
  status: "draft" | "submitted" | "returned" | "accepted";
  version: number;
  etag: string;
  findings: Record<string, FindingState>;
  report: Record<string, string>;
  boxes: StoredBox[];
  rejected_suggestion_boxes?: string[];
  review_comment: string;
  reviewed_by: string | null;
  submitted_at: string | null;
  updated_at?: string;
  shown_suggestion?: ShownSuggestion | null;
};

export type CaseDetail = {
  id: number;
  project: number;
  state: string;
  patient: string;
  study_date: string | null;
  study_description: string;
  indication: string;
  history: string;
  lab_results: LabResult[];
  series: Series[];
  leased_to: string | null;
  lease_expires_at: string | null;
};

export type LeasedCase = CaseDetail & { annotation: Annotation };

export type SuggestionBox = {
  id: string;
  instance_id: number;
  frame: number;
  x: number;
  y: number;
  width: number;
  height: number;
  finding: string;
  score: number;
  /** A 3D suggestion (a CT or MR series), stored as a 3D box is: drawn on ``instance_id``
   * (the slice at its centre), over slices [first, last] (1-based, position order) of series
   * ``series_id``, with its patient mm. Accepting it makes a 3D box over the same slices. */
  slices?: [number, number];
  series_id?: number;
  patient_mm?: { min: number[]; max: number[]; center: number[]; size: number[] } | null;
};

/** A sentence of the model's report draft and what it came from (the findings it states as
 * present; the suggestion box ``s{box_index}`` when one of them has a box). */
export type ReportLink = { section: string; text: string; findings: string[]; box_index: number | null };

export type Suggestion = {
  id: number;
  model_version: number;
  /** Made by the version that serves now. */
  serving?: boolean;
  boxes: SuggestionBox[];
  finding_probabilities: Record<string, number>;
  /** Findings the server says to prefill (only above the version's calibrated thresholds). */
  findings_prefilled?: Record<string, FindingState>;
  report_draft: Record<string, string>;
  uncertainty: Record<string, unknown>;
  created_at: string;
};

/** Something of the suggestion the server held back, and why, in words. */
export type Withheld = { kinds: string[]; finding: string | null; message: string };

/** GET /api/cases/{id}/suggestion/: what the workspace may show, and what it may not. */
export type ServedSuggestion = {
  /** "shown": the version has reliable parts; "learning": nothing reliable yet (or no version);
   * "none": a version serves but has not scored this case; "blinded": the case is in the locked
   * test set, read without the model so that its label stays an independent reference. */
  state: "shown" | "learning" | "none" | "blinded";
  message: string;
  suggestion: Suggestion | null;
  withheld: Withheld[];
};

/** What an annotator was shown, and how much they changed it (on submitted annotations). */
export type ShownSuggestion = {
  model_version_number: number;
  boxes: SuggestionBox[];
  findings_prefilled: Record<string, FindingState>;
  finding_probabilities: Record<string, number>;
  report_draft: Record<string, string>;
  withheld: Withheld[];
  served_at: string;
  confidence: number | null;
  boxes_kept_fraction: number | null;
  findings_changed_fraction: number | null;
  draft_edit_distance: number | null;
  change: number | null;
};

/** Content the annotator edits, as PUT /annotation/ takes it. */
export type AnnotationContent = {
  findings: Record<string, FindingState>;
  report: Record<string, string>;
  boxes: Omit<StoredBox, "id">[];
  rejected_suggestion_boxes: string[];
};
