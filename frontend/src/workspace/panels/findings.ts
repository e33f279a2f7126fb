/** Case-level findings: present / absent / uncertain per schema class, with the model's
 * probability shown and prefilled values marked until the annotator touches them. */

import { h } from "../../shared/dom";
import type { FindingClass, FindingState } from "../types";

const STATES: FindingState[] = ["present", "absent", "uncertain"];

/** The model's Grad-CAM heatmaps: which finding's is shown, and how to toggle one. */
export type HeatmapControl = { shown: string | null; toggle(key: string): void };

export function renderFindings(
  classes: FindingClass[],
  values: Record<string, FindingState>,
  probabilities: Record<string, number>,
  prefilled: Set<string>,
  onChange: ((key: string, state: FindingState) => void) | null,
  heatmaps: HeatmapControl | null = null,
): HTMLElement {
  return h(
    "section",
    { class: "panel findings", "aria-label": "Findings" },
    h("h2", { text: "Findings" }),
    h(
      "table",
      { class: "findings-table" },
      h(
        "tbody",
        {},
        classes.map((f) => {
          const p = probabilities[f.key];
          return h(
            "tr",
            { "data-finding": f.key, class: prefilled.has(f.key) ? "prefilled" : "" },
            h(
              "th",
              { scope: "row", title: f.name },
              h(
                "span",
                { class: "finding-label" },
                h("span", { class: "swatch", style: { background: f.color, borderColor: f.color }, "aria-hidden": "true" }),
                // A long name is cut short; the tag saying the model prefilled it never is.
                h("span", { class: "finding-name", text: f.name }),
                prefilled.has(f.key)
                  ? h("span", { class: "model-tag", title: "Prefilled by the model until you change it", text: "model" })
                  : null,
              ),
            ),
            h(
              "td",
              { class: "probability", title: "Model probability" },
              // With heatmaps, the probability is also the button that shows where it comes from.
              heatmaps
                ? h("button", {
                    type: "button",
                    class: "heatmap",
                    "data-heatmap": f.key,
                    "aria-pressed": heatmaps.shown === f.key ? "true" : "false",
                    title: `Model probability; click to see where the model sees ${f.name} (Grad-CAM)`,
                    "aria-label": `Heatmap for ${f.name}`,
                    text: typeof p === "number" ? `${Math.round(p * 100)}%` : "—",
                    onclick: () => heatmaps.toggle(f.key),
                  })
                : typeof p === "number"
                  ? `${Math.round(p * 100)}%`
                  : "—",
            ),
            h(
              "td",
              {},
              h(
                "div",
                { class: "segmented", role: "radiogroup", "aria-label": f.name },
                STATES.map((state) =>
                  h("button", {
                    type: "button",
                    role: "radio",
                    class: `state-${state}`,
                    "data-state": state,
                    "aria-checked": values[f.key] === state ? "true" : "false",
                    disabled: onChange === null,
                    text: state,
                    onclick: () => onChange?.(f.key, state),
                  }),
                ),
              ),
            ),
          );
        }),
      ),
    ),
  );
}
