import { describe, expect, it } from "vitest";
import { describeBox, figures } from "../figures";
import { pairBoxes, type ReadBox } from "../merge";

const instance = (id: number) => ({ id, rows: 64, columns: 64, number_of_frames: 1 });
const ct = { id: 7, modality: "CT", description: "", instances: [11, 12, 13, 14, 15, 16].map(instance) };
// Stack order differs from the instances' order: slice 1 is instance 16, slice 6 instance 11.
const stacks = new Map([[7, [16, 15, 14, 13, 12, 11]]]);
const volume = (id: number, instanceId: number, slices: [number, number]): ReadBox => ({
  id, instance_id: instanceId, frame: 1, x: 5, y: 6, width: 10, height: 12, finding: "nodule",
  series_id: 7, slice_first: slices[0], slice_last: slices[1],
  patient_mm: { min: [0, 0, 0], max: [5.5, 6.6, 7.5], center: [0, 0, 0], size: [5.47, 6.56, 7.5] },
});

describe("figures of a CT series", () => {
  it("shows the slices the readers drew on, each with every 3D box over it", () => {
    // A drew on slice 3 (instance 14) over 2..4; B on slice 5 (instance 12) over 4..6.
    const rows = pairBoxes([volume(1, 14, [2, 4])], [volume(2, 12, [4, 6])]);
    const shown = figures([ct], rows, stacks);
    expect(shown.map((f) => [f.instance.id, f.caption])).toEqual([
      [14, "Series 7 · slice 3 / 6"],
      [12, "Series 7 · slice 5 / 6"],
    ]);
    expect(shown[0].boxes.map((b) => b.box.id)).toEqual([1]); // B's range starts at 4
    expect(shown[1].boxes.map((b) => b.box.id)).toEqual([2]);
    const wide = pairBoxes([volume(1, 14, [1, 6])], [volume(2, 12, [4, 6])]);
    expect(figures([ct], wide, stacks)[1].boxes.map((b) => b.box.id)).toEqual([1, 2]);
  });

  it("shows the middle slice of a series nobody drew on", () => {
    expect(figures([ct], [], stacks).map((f) => f.caption)).toEqual(["Series 7 · slice 3 / 6"]);
  });

  it("describes a 3D box by series, slices and size in mm", () => {
    expect(describeBox(volume(1, 14, [2, 4]))).toBe("series 7 · slices 2–4 · 5.5 × 6.6 × 7.5 mm · 10×12 at 5,6");
  });
});
