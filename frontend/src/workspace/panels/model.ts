/** The model's state for this case: its suggestions, or that it is still learning, and per
 * class why nothing is shown. */

import { h } from "../../shared/dom";
import { modelStatusLines } from "../suggestions";
import type { ServedSuggestion } from "../types";

export function renderModelStatus(served: ServedSuggestion | null): HTMLElement | null {
  const { headline, lines } = modelStatusLines(served);
  if (!served || (!headline && !lines.length)) return null;
  return h(
    "section",
    { class: `panel model-status ${served.state}`, id: "model-status", "data-state": served.state, "aria-label": "Model" },
    h("h2", { text: served.state === "learning" ? "Model: still learning" : "Model" }),
    headline ? h("p", { class: "model-message", text: headline }) : null,
    lines.length
      ? h(
          "details",
          { class: "model-learning", open: served.state !== "shown" },
          h("summary", { text: `Not shown (${lines.length})` }),
          h("ul", { id: "model-learning" }, lines.map((line) => h("li", { text: line }))),
        )
      : null,
  );
}
