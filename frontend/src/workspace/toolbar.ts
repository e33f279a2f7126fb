/** The viewer toolbar: tools, window presets, view actions, active finding class, save state. */

import type { ViewerHandle, WindowPreset } from "../viewer";
import { h } from "../shared/dom";
import { presetKeys } from "./keymap";
import type { FindingClass } from "./types";

const TOOLS: { tool: string; label: string; key: string }[] = [
  { tool: "windowLevel", label: "W/L", key: "w" },
  { tool: "pan", label: "Pan", key: "h" },
  { tool: "zoom", label: "Zoom", key: "z" },
  { tool: "rectangle", label: "Box", key: "b" },
];

export function buildViewerToolbar(
  findings: FindingClass[],
  presets: WindowPreset[],
  run: (command: string) => void,
  onActiveFinding: ((key: string) => void) | null,
  extra: HTMLElement[],
  readOnly = false,
): { toolbar: HTMLElement[]; saveState: HTMLElement } {
  const hotkeys = new Set(findings.map((f) => f.hotkey).filter((k): k is string => !!k));
  const saveState = h("span", { class: "save-state", id: "save-state", role: "status" });
  const toolbar: HTMLElement[] = [
    h(
      "div",
      { class: "group", role: "group", "aria-label": "Tool" },
      TOOLS.filter((t) => !(readOnly && t.tool === "rectangle")).map((t) =>
        h("button", {
          type: "button",
          class: "tool",
          "data-tool": t.tool,
          "aria-pressed": t.tool === "windowLevel" ? "true" : "false",
          title: `${t.label} (${t.key})`,
          text: t.label,
          onclick: () => run(`tool.${t.tool}`),
        }),
      ),
    ),
    h(
      "div",
      { class: "group", role: "group", "aria-label": "Window presets" },
      presets.map((p) =>
        h("button", {
          type: "button",
          class: "secondary preset",
          "data-preset": p.name,
          title: `${p.name} (${presetKeys(p, hotkeys).join(", ") || "no key"})`,
          text: p.name,
          onclick: () => run(`preset.${p.name}`),
        }),
      ),
      h("button", { type: "button", class: "secondary", title: "Invert (i)", text: "Invert", onclick: () => run("view.invert") }),
      h("button", { type: "button", class: "secondary", title: "Reset (r)", text: "Reset", onclick: () => run("view.reset") }),
      h("button", {
        type: "button",
        class: "secondary",
        id: "planes-button",
        "aria-pressed": "false",
        title: "Axial, coronal and sagittal views of a CT or MR series, linked by crosshairs (m)",
        text: "3 planes",
        onclick: () => run("view.planes"),
      }),
    ),
    onActiveFinding
      ? h(
          "label",
          { class: "group active-finding" },
          "New box: ",
          h(
            "select",
            { id: "active-finding", onchange: (e: Event) => onActiveFinding((e.target as HTMLSelectElement).value) },
            findings.map((f) => h("option", { value: f.key, text: f.hotkey ? `${f.name} (${f.hotkey})` : f.name })),
          ),
        )
      : h("span", {}),
    h("span", { class: "spacer" }),
    saveState,
    h("button", { type: "button", class: "secondary", id: "help-button", title: "Keyboard shortcuts (?)", text: "?", "aria-label": "Keyboard shortcuts", onclick: () => run("help") }),
    ...extra,
  ];
  return { toolbar, saveState };
}

/** The "3 planes" button's command: the shown series as three linked planes, or back to its
 * stack. An image that is not a regular series stays as it is (the viewer says why). */
export async function togglePlanes(viewer: ViewerHandle, toolbar: HTMLElement): Promise<void> {
  const on = viewer.planes() === null;
  const refused = await viewer.showPlanes(on);
  const shown = on && refused === null;
  toolbar.querySelector("#planes-button")?.setAttribute("aria-pressed", shown ? "true" : "false");
}
