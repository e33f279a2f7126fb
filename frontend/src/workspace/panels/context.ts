/** Clinical context beside the image: indication, history, lab table with out-of-range marks. */

import { h } from "../../shared/dom";
import type { CaseDetail, LabResult } from "../types";

function formatNumber(v: number | null): string {
  if (v === null || v === undefined) return "";
  return Number.isInteger(v) ? String(v) : String(Math.round(v * 1000) / 1000);
}

function range(lab: LabResult): string {
  const low = formatNumber(lab.reference_low);
  const high = formatNumber(lab.reference_high);
  if (low && high) return `${low}–${high}`;
  if (low) return `≥ ${low}`;
  if (high) return `≤ ${high}`;
  return "—";
}

function flag(lab: LabResult): string {
  if (!lab.out_of_range || lab.value === null) return "";
  if (lab.reference_high !== null && lab.value > lab.reference_high) return "▲ high";
  if (lab.reference_low !== null && lab.value < lab.reference_low) return "▼ low";
  return "out of range";
}

export function renderContext(c: CaseDetail): HTMLElement {
  const labs = c.lab_results ?? [];
  return h(
    "section",
    { class: "panel context", "aria-label": "Clinical context" },
    h("h2", { text: "Clinical context" }),
    h(
      "dl",
      { class: "facts" },
      h("dt", { text: "Patient" }),
      h("dd", { text: c.patient || "—" }),
      h("dt", { text: "Study" }),
      h("dd", { text: [c.study_date, c.study_description].filter(Boolean).join(" · ") || "—" }),
    ),
    h("h3", { text: "Indication" }),
    h("p", { class: "indication", text: c.indication || "None given." }),
    h("h3", { text: "History" }),
    h("p", { class: "history", text: c.history || "None given." }),
    h("h3", { text: `Labs (${labs.length})` }),
    labs.length === 0
      ? h("p", { class: "muted", text: "No lab results." })
      : h(
          "table",
          { class: "labs" },
          h(
            "thead",
            {},
            h("tr", {}, h("th", { text: "Test" }), h("th", { text: "Value (reference)" })),
          ),
          h(
            "tbody",
            {},
            labs.map((lab) =>
              h(
                "tr",
                {
                  class: lab.out_of_range ? "out-of-range" : "",
                  title: lab.observed_at ? `Observed ${new Date(lab.observed_at).toLocaleString()}` : undefined,
                },
                h("td", { text: lab.name || lab.code }),
                h(
                  "td",
                  { class: "value" },
                  `${lab.value !== null ? formatNumber(lab.value) : lab.value_text} ${lab.unit}`.trim(),
                  lab.out_of_range
                    ? h("span", { class: "flag", "aria-label": "out of range", text: ` ${flag(lab)}` })
                    : null,
                  h("span", { class: "ref", text: `ref. ${range(lab)} ${lab.unit}`.trim() }),
                ),
              ),
            ),
          ),
        ),
  );
}
