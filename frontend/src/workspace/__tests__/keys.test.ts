import { describe, expect, it } from "vitest";
import { DEFAULT_PRESETS } from "../../viewer/presets";
import { CommandRegistry } from "../commands";
import { annotateBindings } from "../keymap";

const chord = (init: Partial<KeyboardEvent>) => CommandRegistry.chord(init as KeyboardEvent);
const findings = ["nodule", "mass", "consolidation", "effusion", "pneumothorax", "cardiomegaly"]
  .map((key, i) => ({ key, name: key, color: "#ffffff", hotkey: String(i + 1) }));

describe("key chords", () => {
  it("names plain, shifted and control keys as the bindings do", () => {
    expect(chord({ key: "N", shiftKey: false })).toBe("n");
    expect(chord({ key: "!", code: "Digit1", shiftKey: true })).toBe("Shift+1");
    expect(chord({ key: "Enter", ctrlKey: true })).toBe("Ctrl+Enter");
    expect(chord({ key: "S", code: "KeyS", shiftKey: true })).toBe("Shift+s");
  });
});

describe("annotate key map", () => {
  const bindings = annotateBindings(findings, DEFAULT_PRESETS);

  it("never binds one key to two commands", () => {
    const seen = new Map<string, string>();
    for (const binding of bindings) {
      for (const key of binding.keys) {
        expect(seen.get(key), `${key} is bound twice`).toBeUndefined();
        seen.set(key, binding.command);
      }
    }
  });

  it("gives every finding class its schema hotkey and moves clashing presets to Shift", () => {
    const byCommand = new Map(bindings.map((b) => [b.command, b.keys]));
    expect(byCommand.get("finding.nodule")).toEqual(["1"]);
    expect(byCommand.get("preset.Lung")).toEqual(["Shift+2"]);
    expect(byCommand.get("case.submit")).toEqual(["Ctrl+Enter"]);
  });

  it("runs a registered command and reports unknown ones", () => {
    const registry = new CommandRegistry();
    let ran = 0;
    registry.register("case.submit", { label: "Submit", run: () => (ran += 1) });
    expect(registry.run("case.submit")).toBe(true);
    expect(registry.run("nothing")).toBe(false);
    expect(ran).toBe(1);
  });
});
