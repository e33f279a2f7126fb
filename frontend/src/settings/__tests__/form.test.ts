import { describe, expect, it } from "vitest";
import { changed, coldStartWarning, fieldsNamed, findingKeysChanged, parseValue, schemaEntryNamed } from "../form";

const schema = (...keys: string[]) => ({
  findings: keys.map((key) => ({ key, name: key, color: "#ffffff", hotkey: "" })),
  report_sections: [{ key: "findings", title: "Findings" }],
});

describe("the settings page's forms", () => {
  it("sees a cold start in renamed, added, removed or reordered finding keys only", () => {
    const saved = schema("nodule", "mass");
    expect(findingKeysChanged(saved, schema("nodule", "mass"))).toBe(false);
    const renamed = schema("nodule", "mass");
    renamed.findings[1].name = "Big mass";
    renamed.findings[1].color = "#000000";
    expect(findingKeysChanged(saved, renamed)).toBe(false);
    expect(findingKeysChanged(saved, schema("nodule", "tumour"))).toBe(true);
    expect(findingKeysChanged(saved, schema("nodule", "mass", "effusion"))).toBe(true);
    expect(findingKeysChanged(saved, schema("nodule"))).toBe(true);
    expect(findingKeysChanged(saved, schema("mass", "nodule"))).toBe(true);
  });

  it("warns only when a version exists to build on, naming it and the cold start's source", () => {
    const saved = schema("nodule");
    expect(coldStartWarning(saved, schema("mass"), null, "From scratch")).toBeNull();
    expect(coldStartWarning(saved, schema("nodule"), 3, "From scratch")).toBeNull();
    const text = coldStartWarning(saved, schema("mass"), 3, "From scratch");
    expect(text).toContain("forces a cold start");
    expect(text).toContain("version 3");
    expect(text).toContain("from scratch");
  });

  it("sends numbers as numbers, an empty box as null and only what changed", () => {
    expect(parseValue(" 0.25 ", "number")).toBe(0.25);
    expect(parseValue("", "number")).toBeNull();
    expect(parseValue("abc", "number")).toBe("abc");
    expect(changed({ a: 1, b: "x", c: true }, { a: 1, b: "y", c: false })).toEqual({ b: "y", c: false });
  });

  it("finds the fields a refusal names, by its fields or its message", () => {
    const names = ["lease_seconds", "double_read_fraction", "validation_fraction"];
    expect(fieldsNamed(names, "x", { lease_seconds: ["too small"] })).toEqual(["lease_seconds"]);
    expect(fieldsNamed(names, "validation_fraction must be at least 0 and below 1.")).toEqual([
      "validation_fraction",
    ]);
    expect(fieldsNamed(["min_class_ap", "class_ap"], "model_config: min_class_ap must lie in [0, 1]")).toEqual([
      "min_class_ap",
    ]);
  });

  it("finds the schema entry a refusal names", () => {
    expect(schemaEntryNamed("label_schema.findings[6].hotkey '1' is used twice.")).toEqual({
      list: "findings",
      row: 6,
      field: "hotkey",
    });
    expect(schemaEntryNamed("label_schema.report_sections[1] must be an object with a 'key'.")).toEqual({
      list: "report_sections",
      row: 1,
      field: null,
    });
    expect(schemaEntryNamed("label_schema.findings must be a non-empty list.")).toBeNull();
  });
});
