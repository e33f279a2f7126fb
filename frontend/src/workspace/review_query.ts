/** The review queue's sort orders and filters, as the review-queue API takes them: by the
 * model's confidence in what it showed, and by how much the annotator changed it. */

export const REVIEW_ORDERINGS: Record<string, string> = {
  submitted: "Oldest first",
  "-submitted": "Newest first",
  "-change": "Most changed from the model first",
  change: "Least changed from the model first",
  confidence: "Model least confident first",
  "-confidence": "Model most confident first",
};

export const REVIEW_FILTERS: Record<string, { label: string; query: Record<string, string> }> = {
  all: { label: "All", query: {} },
  changed: { label: "Changed a lot (change ≥ 0.5)", query: { change_min: "0.5" } },
  kept: { label: "Kept as suggested (change ≤ 0.2)", query: { change_max: "0.2" } },
  unsure: { label: "Model unsure (confidence ≤ 0.6)", query: { confidence_max: "0.6" } },
  sure: { label: "Model sure (confidence ≥ 0.8)", query: { confidence_min: "0.8" } },
};

/** The query string for the review queue (unknown names fall back to the defaults). */
export function reviewQueueQuery(ordering: string, filter: string, limit = 100): string {
  const params = new URLSearchParams({ limit: String(limit) });
  params.set("ordering", ordering in REVIEW_ORDERINGS ? ordering : "submitted");
  for (const [key, value] of Object.entries((REVIEW_FILTERS[filter] ?? REVIEW_FILTERS.all).query)) {
    params.set(key, value);
  }
  return `?${params.toString()}`;
}

/** A 0..1 figure as a percentage, or "—" when there is none. */
export function percent(value: number | null | undefined): string {
  return typeof value === "number" ? `${Math.round(value * 100)}%` : "—";
}
