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

describe("3D boxes", () => {
  const volume = (id: number, x: number, slices: [number, number], series = 7, instance = 40): ReadBox => ({
    ...box(id, "nodule", x, 10, 20, instance),
    series_id: series,
    slice_first: slices[0],
    slice_last: slices[1],
  });

  it("agree by 3D IoU over their slices (hand-checked), within their series only", () => {
    // Same 20 x 20 outline: slices 5..14 and 8..17 share 7 of 10 slices: 7 / 13.
    expect(iou(volume(1, 10, [5, 14]), volume(2, 10, [8, 17]))).toBeCloseTo(7 / 13);
    // 10..19 shares 5: 5 / 15, no pair at 0.5 even though the outlines are identical.
    const rows = pairBoxes([volume(1, 10, [5, 14])], [volume(2, 10, [10, 19])]);
    expect(rows.map((r) => r.key)).toEqual(["a-1", "b-2"]);
    expect(pairBoxes([volume(1, 10, [5, 14])], [volume(2, 10, [5, 14], 8)]).map((r) => r.key)).toEqual(["a-1", "b-2"]);
    // A 3D box never pairs with a 2D box on one of its slices.
    expect(pairBoxes([volume(1, 10, [5, 14])], [box(2, "nodule", 10, 10, 20, 40)]).map((r) => r.key)).toEqual(["a-1", "b-2"]);
    const paired = pairBoxes([volume(1, 10, [5, 14])], [volume(2, 10, [8, 17], 7, 41)]);
    expect(paired[0].key).toBe("pair-1-2");
  });

  it("keeps the chosen reader's slices in the final label", () => {
    const rows = pairBoxes([volume(1, 10, [5, 14])], [volume(2, 11, [6, 14], 7, 41)]);
    expect(finalBoxes(rows, { [rows[0].key]: "b" })).toEqual([
      { instance_id: 41, frame: 1, x: 11, y: 10, width: 20, height: 20, finding: "nodule", slices: [6, 14] },
    ]);
  });
});
