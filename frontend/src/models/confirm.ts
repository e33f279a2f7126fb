/** Promote and roll back ask first (#confirm in models.html): what changes, both versions'
 * validation figures, their validation labels and the paired comparison between them. */

import { h } from "../shared/dom";
import { FIGURE_NAMES, METRICS, figure, figureText, pairedText, validationLabels } from "./format";
import type { ModelVersion } from "./types";

export type ChangeAction = "promote" | "rollback";

function byId(id: string): HTMLElement {
  const node = document.getElementById(id);
  if (!node) throw new Error(`The Models page has no #${id}.`);
  return node;
}

/** Fills the dialog for ``action`` to ``target`` while ``serving`` (if any) serves. */
export function renderConfirmation(
  action: ChangeAction,
  target: ModelVersion,
  serving: ModelVersion | null,
  promotionMetric: string,
): void {
  const verb = action === "promote" ? `Promote v${target.number}` : `Roll back to v${target.number}`;
  byId("confirm-title").textContent = `${verb}?`;
  byId("confirm-effect").textContent = serving
    ? `v${target.number} will serve every annotator instead of v${serving.number}; ` +
      "the open cases are scored again and the queue re-ranked."
    : `v${target.number} will serve every annotator.`;
  const shown = serving ? [serving, target] : [target];
  const figures = byId("confirm-figures");
  figures.querySelector("thead tr")?.replaceChildren(
    h("th", { text: "Validation figure" }),
    ...shown.map((v) =>
      h("th", {
        text: v === serving ? `v${v.number} (serving now)` : `v${v.number}`,
        class: "num",
        "data-version": v.number,
      }),
    ),
  );
  const paths = [...new Set([...METRICS, promotionMetric].filter(Boolean))];
  const rows = paths.map((path) =>
    h(
      "tr",
      { "data-metric": path },
      h("th", { text: FIGURE_NAMES[path] ?? path }),
      ...shown.map((v) => {
        const { value, missing } = figure(v, path);
        const cell = h("td", { text: figureText(value), class: "num", "data-version": v.number });
        if (value === null) cell.append(h("small", { text: ` (${missing})`, class: "why" }));
        return cell;
      }),
    ),
  );
  rows.push(
    h(
      "tr",
      { "data-metric": "validation_labels" },
      h("th", { text: "Validation labels" }),
      ...shown.map((v) => {
        const n = validationLabels(v);
        return h("td", { text: n === null ? "—" : String(n), class: "num", "data-version": v.number });
      }),
    ),
  );
  figures.querySelector("tbody")?.replaceChildren(...rows);
  const counts = shown.map(validationLabels);
  const differ = serving !== null && counts[0] !== counts[1];
  const warning = byId("confirm-warning");
  warning.textContent = differ
    ? "Each version's figures were measured on the validation labels of its own cycle " +
      `(${counts.map((n) => (n === null ? "none" : n)).join(" and ")}): they are not measured ` +
      "on the same cases."
    : "";
  warning.hidden = !differ;
  byId("confirm-paired").textContent = pairedText(target, serving);
  byId("confirm-ok").textContent = verb;
}

/** Shows the dialog; ``onConfirm`` runs when the user confirms, nothing when they cancel. */
export function askToChange(
  action: ChangeAction,
  target: ModelVersion,
  serving: ModelVersion | null,
  promotionMetric: string,
  onConfirm: () => void,
): void {
  renderConfirmation(action, target, serving === target ? null : serving, promotionMetric);
  const dialog = byId("confirm") as HTMLDialogElement;
  dialog.returnValue = "";
  dialog.onclose = () => {
    if (dialog.returnValue === "confirm") onConfirm();
  };
  dialog.showModal();
}
