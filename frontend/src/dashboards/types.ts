/** The dashboard endpoints' JSON (annotations/api/dashboard_views.py) and the page's config. */

export type CaseStates = {
  total: number;
  open: number;
  complete: number;
  returned: number;
  submitted: number;
  accepted: number;
  leased: number;
  draft: number;
  skipped: number;
  waiting: number;
};

export type BurnDownDay = { date: string; remaining: number; validation_remaining: number };

/** GET /api/projects/{id}/dashboard/queue/ */
export type QueueDashboard = {
  cases: CaseStates;
  validation: CaseStates;
  expired_leases: number;
  skips: number;
  skip_reasons: { reason: string; count: number }[];
  burn_down: BurnDownDay[];
};

export type SuggestionUse = {
  accepted: number;
  edited: number;
  rejected: number;
  drawn: number;
  suggested: number;
  accepted_share: number | null;
  edited_share: number | null;
  rejected_share: number | null;
};

export type AnnotatorThroughput = {
  annotator: string;
  submitted: number;
  returned: number;
  timed_cases: number;
  median_seconds_to_first_submit: number | null;
  daily: { date: string; submitted: number }[];
  suggestions: SuggestionUse;
};

/** GET /api/projects/{id}/dashboard/throughput/?days= */
export type ThroughputDashboard = {
  days: number;
  start: string;
  end: string;
  annotators: AnnotatorThroughput[];
  suggestions: SuggestionUse;
};

/** GET /api/projects/{id}/dashboard/review/ */
export type ReviewDashboard = {
  queue_size: number;
  oldest_submitted_at: string | null;
  annotators: { annotator: string; awaiting_review: number; returned: number; accepted: number }[];
};

/** Embedded by frontend/templates/frontend/dashboard.html (#dashboard-config). */
export type DashboardConfig = {
  projectId: number;
  projectName: string;
  csrfToken: string;
  days: number;
  dayChoices: number[];
  findings: { key: string; name: string }[];
};
