import { describe, expect, it } from "vitest";
import { wordDiff } from "../diff";

const text = (parts: ReturnType<typeof wordDiff>, kind: string) =>
  parts.filter((p) => p.kind === kind).map((p) => p.text).join("");

describe("wordDiff", () => {
  it("marks an added sentence as added and keeps the rest", () => {
    const parts = wordDiff("Probable nodule.", "Probable nodule. Follow-up CT advised.");
    expect(text(parts, "same")).toContain("Probable nodule.");
    expect(text(parts, "added").trim()).toBe("Follow-up CT advised.");
    expect(text(parts, "removed")).toBe("");
  });

  it("shows a replaced word as removed and added", () => {
    const parts = wordDiff("small left effusion", "small right effusion");
    expect(text(parts, "removed")).toBe("left");
    expect(text(parts, "added")).toBe("right");
  });

  it("rebuilds both texts from its parts", () => {
    const before = "No pneumothorax. Heart size normal.";
    const after = "Small apical pneumothorax. Heart size normal.";
    const parts = wordDiff(before, after);
    expect(parts.filter((p) => p.kind !== "added").map((p) => p.text).join("")).toBe(before);
    expect(parts.filter((p) => p.kind !== "removed").map((p) => p.text).join("")).toBe(after);
  });

  it("returns nothing for two empty texts", () => {
    expect(wordDiff("", "")).toEqual([]);
  });
});
