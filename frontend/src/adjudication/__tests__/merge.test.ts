import { describe, expect, it } from "vitest";
import { defaultFindings, finalBoxes, iou, pairBoxes, undecided, type Read, type ReadBox } from "../merge";

const box = (id: number, finding: string, x: number, y: number, size = 20, instance = 1): ReadBox => ({
  id,
  instance_id: instance,
  frame: 1,
  x,
  y,
  width: size,
  height: size,
  finding,
});

const read = (id: number, findings: Record<string, string>, boxes: ReadBox[]): Read => ({
  id,
  annotator: `r${id}`,
  findings,
  report: {},
  boxes,
});

describe("iou", () => {
  it("is intersection over union (hand-checked)", () => {
    // 18 x 18 = 324 overlap; 400 + 400 - 324 = 476.
    expect(iou(box(1, "n", 10, 10), box(2, "n", 12, 12))).toBeCloseTo(324 / 476);
    expect(iou(box(1, "n", 0, 0), box(2, "n", 50, 50))).toBe(0);
  });
});

describe("pairBoxes", () => {
  it("pairs same-finding boxes above IoU 0.5 and lists the rest per reader", () => {
    const a = [box(1, "nodule", 10, 10), box(2, "nodule", 60, 60)];
    const b = [box(3, "nodule", 12, 12), box(4, "effusion", 80, 80)];
    const rows = pairBoxes(a, b);
    expect(rows.map((r) => r.key)).toEqual(["pair-1-3", "a-2", "b-4"]);
    expect(rows[0].iou).toBeCloseTo(324 / 476);
  });

  it("does not pair across findings or images", () => {
    const rows = pairBoxes([box(1, "nodule", 0, 0)], [box(2, "mass", 0, 0), box(3, "nodule", 0, 0, 20, 9)]);
    expect(rows.map((r) => r.key)).toEqual(["a-1", "b-2", "b-3"]);
  });

  it("gives each box to its best partner once", () => {
    const a = [box(1, "n", 0, 0), box(2, "n", 3, 0)];
    const b = [box(3, "n", 2, 0)];
    const rows = pairBoxes(a, b);
    expect(rows.map((r) => r.key)).toEqual(["pair-2-3", "a-1"]);
  });
});

describe("proposal", () => {
  it("keeps the findings both readers called and asks for the rest", () => {
    const a = read(1, { nodule: "present", effusion: "absent" }, []);
    const b = read(2, { nodule: "present", effusion: "present" }, []);
    const final = defaultFindings(["nodule", "effusion", "mass"], a, b);
    expect(final).toEqual({ nodule: "present" });
    expect(undecided(["nodule", "effusion", "mass"], final)).toEqual(["effusion", "mass"]);
  });

  it("keeps A's box of each pair by default and what the reviewer picks otherwise", () => {
    const rows = pairBoxes([box(1, "n", 10, 10), box(2, "n", 60, 60)], [box(3, "n", 12, 12)]);
    expect(finalBoxes(rows, {}).map((b) => b.x)).toEqual([10]);
    expect(finalBoxes(rows, { "pair-1-3": "b", "a-2": "a" }).map((b) => b.x)).toEqual([12, 60]);
    expect(finalBoxes(rows, { "pair-1-3": "none" })).toEqual([]);
    expect(finalBoxes(rows, {})[0]).not.toHaveProperty("id");
  });
});
