/** Which suggestion the workspace shows: the serving (promoted) version's, else the newest
 * version's (a rolled-back version's newer suggestions are not shown over the serving one's). */

import type { Suggestion } from "./types";

export function newestSuggestion(items: Suggestion[]): Suggestion | null {
  const sorted = [...items].sort(
    (a, b) =>
      Number(Boolean(b.serving)) - Number(Boolean(a.serving)) ||
      b.model_version - a.model_version ||
      b.created_at.localeCompare(a.created_at),
  );
  return sorted[0] ?? null;
}
