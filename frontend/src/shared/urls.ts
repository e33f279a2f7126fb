/** Every address of MedLoop's REST API (annotations/api/urls.py, active_learning/api/urls.py)
 * and of the pages the frontend links to, in one place. Pages build their requests from these,
 * never from strings of their own, so a route that moves is changed here alone. */

type Id = number | string;

/** `?a=1&b=2` from the given parameters (empty ones left out), or "" when none is left. */
export function query(params: Record<string, string | number | boolean | null | undefined> = {}): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === null || value === undefined || value === "") continue;
    search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

const seg = (id: Id): string => encodeURIComponent(String(id));
const project = (id: Id): string => `/api/projects/${seg(id)}`;

export const apiUrls = {
  // Projects and the loop's settings.
  project: (projectId: Id) => `${project(projectId)}/`,
  strategies: () => "/api/strategies/",
  loopSettings: (projectId: Id) => `${project(projectId)}/loop-settings/`,
  members: (projectId: Id) => `${project(projectId)}/members/`,
  member: (projectId: Id, membershipId: Id) => `${project(projectId)}/members/${seg(membershipId)}/`,

  // The queue and the annotator's work on a case.
  nextCase: (projectId: Id, search = "") => `${project(projectId)}/next-case/${search}`,
  case: (caseId: Id) => `/api/cases/${seg(caseId)}/`,
  caseAnnotation: (caseId: Id) => `/api/cases/${seg(caseId)}/annotation/`,
  caseSubmit: (caseId: Id) => `/api/cases/${seg(caseId)}/annotation/submit/`,
  caseSuggestion: (caseId: Id) => `/api/cases/${seg(caseId)}/suggestion/`,
  caseLease: (caseId: Id) => `/api/cases/${seg(caseId)}/lease/`,
  caseSkip: (caseId: Id) => `/api/cases/${seg(caseId)}/skip/`,
  caseExplanation: (caseId: Id, search = "") => `/api/cases/${seg(caseId)}/explanation/${search}`,
  seriesStack: (caseId: Id, seriesId: Id) =>
    `/api/cases/${seg(caseId)}/series/${seg(seriesId)}/stack/`,

  // Review.
  reviewQueue: (projectId: Id, search = "") => `${project(projectId)}/review-queue/${search}`,
  annotation: (annotationId: Id) => `/api/annotations/${seg(annotationId)}/`,
  annotationReview: (annotationId: Id) => `/api/annotations/${seg(annotationId)}/review/`,

  // Images.
  instanceFile: (instanceId: Id) => `/api/instances/${seg(instanceId)}/file/`,
  instanceThumbnail: (instanceId: Id) => `/api/instances/${seg(instanceId)}/thumbnail.png`,
  instanceRender: (instanceId: Id) => `/api/instances/${seg(instanceId)}/render.png`,

  // Models and retraining.
  modelVersions: (projectId: Id) => `${project(projectId)}/model-versions/`,
  promote: (projectId: Id, number: Id) => `${project(projectId)}/model-versions/${seg(number)}/promote/`,
  rollback: (projectId: Id) => `${project(projectId)}/model-versions/rollback/`,
  cycles: (projectId: Id) => `${project(projectId)}/cycles/`,
  cycle: (cycleId: Id) => `/api/cycles/${seg(cycleId)}/`,
  cancelCycle: (cycleId: Id) => `/api/cycles/${seg(cycleId)}/cancel/`,
  modelDashboard: (projectId: Id) => `${project(projectId)}/model-dashboard/`,

  // The lead's dashboard.
  queueDashboard: (projectId: Id) => `${project(projectId)}/dashboard/queue/`,
  throughputDashboard: (projectId: Id, days: number) => `${project(projectId)}/dashboard/throughput/${query({ days })}`,
  reviewDashboard: (projectId: Id) => `${project(projectId)}/dashboard/review/`,
  agreement: (projectId: Id) => `${project(projectId)}/agreement/`,

  // Double reading.
  adjudications: (projectId: Id, search = "") => `${project(projectId)}/adjudications/${search}`,
  adjudication: (adjudicationId: Id) => `/api/adjudications/${seg(adjudicationId)}/`,
  resolveAdjudication: (adjudicationId: Id) => `/api/adjudications/${seg(adjudicationId)}/resolve/`,

  // Images held at import.
  quarantine: (projectId: Id) => `${project(projectId)}/quarantine/`,
  quarantineDecisions: (projectId: Id) => `${project(projectId)}/quarantine/decisions/`,

  // The audit trail: a project's, or (projectId null, staff) every project's.
  auditEvents: (projectId: Id | null) => (projectId === null ? "/api/audit-events/" : `${project(projectId)}/audit-events/`),
  auditEventsCsv: (projectId: Id | null) => (projectId === null ? "/api/audit-events.csv" : `${project(projectId)}/audit-events.csv`),
} as const;

/** Pages (server-rendered shells) the frontend links to. */
export const pageUrls = {
  projectAudit: (projectId: Id, search = "") => `/projects/${seg(projectId)}/audit/${search}`,
} as const;
