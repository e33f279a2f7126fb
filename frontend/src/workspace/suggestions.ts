/** Which suggestion the workspace shows: the newest model version's. */

import type { Suggestion } from "./types";

export function newestSuggestion(items: Suggestion[]): Suggestion | null {
  const sorted = [...items].sort(
    (a, b) => b.model_version - a.model_version || b.created_at.localeCompare(a.created_at),
  );
  return sorted[0] ?? null;
}
