/** What the workspace says about the model's suggestion for a case: the server decides what
 * may be shown (GET /api/cases/{id}/suggestion/); these words say what is and is not there. */

import type { ServedSuggestion } from "./types";

/** The line under "Model suggestions" when no suggestion box waits for a decision. "All
 * suggestions decided" only when the model did suggest boxes: never for a model that showed
 * nothing. */
export function noPendingText(served: ServedSuggestion | null, boxesSuggested: number): string {
  if (boxesSuggested > 0) return "All suggestions decided.";
  if (!served) return "No suggestions for this case.";
  if (served.state === "learning") return "The model is still learning: no suggestions yet.";
  if (served.state === "none") return "No model suggestion for this case yet.";
  if (served.state === "blinded") return "No model suggestions: this case is in the locked test set.";
  return "The model suggests no boxes for this case.";
}

/** The model panel's lines: the server's message, then one line per class held back (none when
 * the version shows everything it has). */
export function modelStatusLines(served: ServedSuggestion | null): { headline: string; lines: string[] } {
  if (!served) return { headline: "", lines: [] };
  return { headline: served.message, lines: served.withheld.map((w) => w.message) };
}
