/** Every key binding of the annotate workspace, as data. Commands are registered by the
 * controller under these ids; the help overlay ("?") is generated from this table. */

import type { WindowPreset } from "../viewer";
import type { KeyBinding } from "./commands";
import type { FindingClass } from "./types";

export function presetKeys(preset: WindowPreset, findingHotkeys: Set<string>): string[] {
  if (!preset.key) return [];
  // Finding classes own the plain digits; presets then move to Shift+digit.
  return findingHotkeys.has(preset.key) ? [`Shift+${preset.key}`] : [preset.key];
}

export function annotateBindings(findings: FindingClass[], presets: WindowPreset[]): KeyBinding[] {
  const hotkeys = new Set(findings.map((f) => f.hotkey).filter((k): k is string => !!k));
  return [
    { keys: ["n", "j"], command: "box.next", group: "Boxes" },
    { keys: ["p", "k"], command: "box.previous", group: "Boxes" },
    { keys: ["a"], command: "suggestion.accept", group: "Boxes" },
    { keys: ["x"], command: "suggestion.reject", group: "Boxes" },
    { keys: ["Delete", "Backspace"], command: "box.delete", group: "Boxes" },
    { keys: ["Escape"], command: "box.deselect", group: "Boxes" },
    { keys: ["]"], command: "box.extend", group: "Boxes" },
    ...findings
      .filter((f) => f.hotkey)
      .map((f) => ({ keys: [f.hotkey!], command: `finding.${f.key}`, group: "Finding class" })),
    { keys: ["b"], command: "tool.rectangle", group: "Tools" },
    { keys: ["w"], command: "tool.windowLevel", group: "Tools" },
    { keys: ["h"], command: "tool.pan", group: "Tools" },
    { keys: ["z"], command: "tool.zoom", group: "Tools" },
    ...presets.map((p) => ({ keys: presetKeys(p, hotkeys), command: `preset.${p.name}`, group: "Window" })),
    { keys: ["g"], command: "explain.heatmap", group: "Window" },
    { keys: ["i"], command: "view.invert", group: "Window" },
    { keys: ["r"], command: "view.reset", group: "Window" },
    { keys: ["m"], command: "view.planes", group: "Window" },
    { keys: ["+", "="], command: "view.zoomIn", group: "Window" },
    { keys: ["-"], command: "view.zoomOut", group: "Window" },
    { keys: ["ArrowDown", "PageDown"], command: "frame.next", group: "Images" },
    { keys: ["ArrowUp", "PageUp"], command: "frame.previous", group: "Images" },
    { keys: ["ArrowRight"], command: "image.next", group: "Images" },
    { keys: ["ArrowLeft"], command: "image.previous", group: "Images" },
    { keys: ["e"], command: "report.focus", group: "Case" },
    { keys: ["Ctrl+s"], command: "draft.save", group: "Case", inText: true },
    { keys: ["Ctrl+Enter"], command: "case.submit", group: "Case", inText: true },
    { keys: ["Shift+s"], command: "case.skip", group: "Case" },
    { keys: ["?"], command: "help", group: "Case" },
  ].filter((b) => b.keys.length > 0);
}
