/** Report editor: one textarea per schema section, prefilled with the model's draft; a toggle
 * shows the annotator's changes against the draft as a word diff. */

import { wordDiff } from "../diff";
import { clear, h } from "../../shared/dom";
import type { FindingClass, ReportLink, ReportSection } from "../types";

export type ReportPanel = { element: HTMLElement; refresh(): void };

/** Tracing the draft: each sentence that states a finding, linked to its box or finding. */
export type DraftTrace = {
  links: ReportLink[];
  findings: FindingClass[];
  showBox(link: ReportLink): void;
  showFinding(key: string): void;
};

function renderSources(section: string, trace: DraftTrace): HTMLElement | null {
  const links = trace.links.filter((l) => l.section === section && l.findings.length > 0);
  if (!links.length) return null;
  const names = new Map(trace.findings.map((f) => [f.key, f]));
  return h(
    "details",
    { class: "draft-sources", "data-sources": section },
    h("summary", { text: `Where the draft's ${links.length === 1 ? "sentence comes" : "sentences come"} from` }),
    h(
      "ul",
      {},
      links.map((link) =>
        h(
          "li",
          { class: "draft-sentence" },
          h("q", { text: link.text }),
          " ",
          link.findings.map((key) =>
            h("button", {
              type: "button",
              class: "chip",
              "data-trace-finding": key,
              title: "Show the model's heatmap for this finding",
              style: { borderColor: names.get(key)?.color ?? "#a0aec0" },
              text: names.get(key)?.name ?? key,
              onclick: () => trace.showFinding(key),
            }),
          ),
          link.box_index !== null
            ? h("button", {
                type: "button",
                class: "chip box-link",
                "data-trace-box": `s${link.box_index}`,
                title: "Select the box this sentence came from",
                text: `box s${link.box_index}`,
                onclick: () => trace.showBox(link),
              })
            : null,
        ),
      ),
    ),
  );
}

export function renderReport(
  sections: ReportSection[],
  report: Record<string, string>,
  draft: Record<string, string>,
  onInput: ((key: string, text: string) => void) | null,
  trace: DraftTrace | null = null,
): ReportPanel {
  let showDiff = false;
  const diffs = new Map<string, HTMLElement>();
  const toggle = h("input", { type: "checkbox", id: "report-diff-toggle" });
  const hasDraft = sections.some((s) => draft[s.key]);
  const refresh = () => {
    for (const section of sections) {
      const el = diffs.get(section.key)!;
      el.hidden = !showDiff;
      if (!showDiff) continue;
      clear(el);
      const before = draft[section.key] ?? "";
      const after = report[section.key] ?? "";
      const parts = wordDiff(before, after);
      if (!parts.some((p) => p.kind !== "same")) {
        el.append(h("span", { class: "muted", text: before ? "Unchanged from the model's draft." : "No draft for this section." }));
        continue;
      }
      for (const part of parts) {
        el.append(
          part.kind === "same"
            ? document.createTextNode(part.text)
            : h(part.kind === "added" ? "ins" : "del", { text: part.text }),
        );
      }
    }
  };
  toggle.addEventListener("change", () => {
    showDiff = toggle.checked;
    refresh();
  });
  const element = h(
    "section",
    { class: "panel report", "aria-label": "Report" },
    h(
      "div",
      { class: "panel-head" },
      h("h2", { text: "Report" }),
      hasDraft
        ? h("label", { class: "toggle" }, toggle, " Changes vs. model draft")
        : h("span", { class: "muted", text: "No model draft" }),
    ),
    sections.map((section) => {
      const id = `report-${section.key}`;
      const textarea = h("textarea", {
        id,
        rows: "4",
        readonly: onInput === null,
        "data-section": section.key,
        value: report[section.key] ?? "",
      });
      textarea.addEventListener("input", () => {
        report[section.key] = textarea.value;
        onInput?.(section.key, textarea.value);
        if (showDiff) refresh();
      });
      const diff = h("div", { class: "diff", "data-diff": section.key, hidden: true, "aria-live": "polite" });
      diffs.set(section.key, diff);
      return h(
        "div",
        { class: "report-section" },
        h("label", { for: id, text: section.title }),
        textarea,
        diff,
        trace ? renderSources(section.key, trace) : null,
      );
    }),
  );
  return { element, refresh };
}
