/** The list of boxes beside the image, in sync with the viewer: the annotator's boxes (finding
 * class changeable, delete) and the model's pending suggestions (accept / reject). */

import { h } from "../../shared/dom";
import type { FindingClass } from "../types";
import { SUGGESTION_PREFIX, type WorkState } from "../work";

export type BoxActions = {
  select(id: string): void;
  setFinding(id: string, finding: string): void;
  remove(id: string): void;
  accept(suggestionId: string): void;
  reject(suggestionId: string): void;
};

const ORIGIN_LABEL: Record<string, string> = {
  drawn: "drawn",
  suggested_accepted: "model, accepted",
  suggested_edited: "model, edited",
};

function swatch(color: string, dashed = false): HTMLElement {
  return h("span", {
    class: dashed ? "swatch dashed" : "swatch",
    style: { borderColor: color, background: dashed ? "transparent" : color },
    "aria-hidden": "true",
  });
}

export function renderBoxes(
  work: WorkState,
  findings: FindingClass[],
  actions: BoxActions,
  readOnly = false,
  /** The line shown when no suggestion waits for a decision (see ``noPendingText``). */
  noPending = "No suggestions for this case.",
): HTMLElement {
  const byKey = new Map(findings.map((f) => [f.key, f]));
  const pending = readOnly ? [] : work.pendingSuggestions();
  const rows = work.boxes.map((box, i) => {
    const cls = byKey.get(box.finding);
    const selected = work.selectedId === box.id;
    return h(
      "li",
      { class: selected ? "box-row selected" : "box-row", "data-box": box.id, "data-origin": box.origin },
      h(
        "button",
        {
          type: "button",
          class: "select-box",
          "aria-pressed": selected ? "true" : "false",
          onclick: () => actions.select(box.id),
        },
        swatch(cls?.color ?? "#888"),
        ` #${i + 1} `,
        h("span", { class: "origin", text: ORIGIN_LABEL[box.origin] ?? box.origin }),
        box.slices ? h("span", { class: "origin", text: ` · slices ${box.slices[0]}–${box.slices[1]}` }) : "",
      ),
      readOnly
        ? h("span", { class: "finding-name", text: cls?.name ?? box.finding })
        : h(
            "select",
            {
              "aria-label": `Finding of box ${i + 1}`,
              class: "finding-select",
              onchange: (e: Event) => actions.setFinding(box.id, (e.target as HTMLSelectElement).value),
            },
            findings.map((f) =>
              h("option", {
                value: f.key,
                selected: f.key === box.finding,
                text: f.hotkey ? `${f.name} (${f.hotkey})` : f.name,
              }),
            ),
          ),
      readOnly
        ? null
        : h("button", {
            type: "button",
            class: "icon danger",
            "aria-label": `Delete box ${i + 1}`,
            title: "Delete (Delete)",
            text: "✕",
            onclick: () => actions.remove(box.id),
          }),
    );
  });
  const suggestionRows = pending.map((s) => {
    const cls = byKey.get(s.finding);
    const viewerId = SUGGESTION_PREFIX + s.id;
    const selected = work.selectedId === viewerId;
    return h(
      "li",
      { class: selected ? "box-row suggestion selected" : "box-row suggestion", "data-suggestion": s.id },
      h(
        "button",
        {
          type: "button",
          class: "select-box",
          "aria-pressed": selected ? "true" : "false",
          onclick: () => actions.select(viewerId),
        },
        swatch(cls?.color ?? "#888", true),
        ` ${cls?.name ?? s.finding} `,
        h("span", { class: "score", text: s.score.toFixed(2) }),
        s.slices ? h("span", { class: "origin", text: ` · slices ${s.slices[0]}–${s.slices[1]}` }) : "",
      ),
      h("button", { type: "button", class: "accept", text: "Accept", title: "Accept (a)", onclick: () => actions.accept(s.id) }),
      h("button", { type: "button", class: "reject secondary", text: "Reject", title: "Reject (x)", onclick: () => actions.reject(s.id) }),
    );
  });
  return h(
    "section",
    { class: "panel boxes", "aria-label": "Boxes" },
    h("h2", {}, `Boxes (${work.boxes.length})`),
    work.boxes.length
      ? h("ol", { class: "box-list", id: "box-list" }, rows)
      : h("p", { class: "muted", text: readOnly ? "No boxes." : "No boxes yet. Press b and drag on the image to draw one." }),
    readOnly
      ? null
      : [
          h("h3", {}, `Model suggestions (${pending.length})`),
          pending.length
            ? h("ul", { class: "box-list", id: "suggestion-list" }, suggestionRows)
            : h("p", { class: "muted", id: "suggestion-empty", text: noPending }),
        ],
  );
}
