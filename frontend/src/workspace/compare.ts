/** After a 412: the server's version beside the local one, so the annotator decides. */

import { openDialog } from "./dialogs";
import { h } from "../shared/dom";
import type { Annotation, AnnotationContent, LabelSchema } from "./types";

export function showCompare(
  schema: LabelSchema,
  server: Annotation,
  local: AnnotationContent,
  actions: { reload: () => void; keepMine: () => Promise<void> },
): void {
  const row = (label: string, a: string, b: string) =>
    h("tr", { class: a === b ? "" : "differs" }, h("th", { scope: "row", text: label }), h("td", { text: a }), h("td", { text: b }));
  const countBy = (boxes: { finding: string }[]) => {
    const counts = new Map<string, number>();
    for (const box of boxes) counts.set(box.finding, (counts.get(box.finding) ?? 0) + 1);
    return [...counts].map(([k, n]) => `${k} ×${n}`).join(", ") || "none";
  };
  const table = h(
    "table",
    { class: "compare", id: "compare-table" },
    h("thead", {}, h("tr", {}, h("th", {}), h("th", { text: `Server (v${server.version}, ${server.updated_at ? new Date(server.updated_at).toLocaleTimeString() : ""})` }), h("th", { text: "This tab" }))),
    h(
      "tbody",
      {},
      row("Boxes", String(server.boxes.length), String(local.boxes.length)),
      row("Boxes by finding", countBy(server.boxes), countBy(local.boxes)),
      schema.findings.map((f) => row(f.name, server.findings[f.key] ?? "—", local.findings[f.key] ?? "—")),
      schema.report_sections.map((s) => row(s.title, server.report[s.key] ?? "", local.report[s.key] ?? "")),
    ),
  );
  const dialog = openDialog("Server version vs. this tab", table, [
    h("button", {
      type: "button",
      id: "compare-reload",
      text: "Use the server's version",
      onclick: () => {
        dialog.close();
        actions.reload();
      },
    }),
    h("button", {
      type: "button",
      class: "danger",
      id: "compare-keep",
      text: "Keep mine (overwrite the server's)",
      onclick: () => {
        dialog.close();
        void actions.keepMine();
      },
    }),
  ]);
}
