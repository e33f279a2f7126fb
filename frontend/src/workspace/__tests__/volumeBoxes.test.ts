import { describe, expect, it } from "vitest";
import { WorkState } from "../work";

const schema = { findings: [{ key: "nodule", name: "Nodule", color: "#ff0000", hotkey: "1" }], report_sections: [] };

describe("3D boxes in the working copy", () => {
  it("extends a box drawn on one slice over the slices up to another, keeping the slice it was drawn on", () => {
    const work = new WorkState(schema);
    const box = work.addDrawn({ instanceId: 7, frame: 1, x: 10, y: 12, width: 8, height: 6 }, "nodule");
    expect(work.content().boxes[0].slices).toBeUndefined(); // a 2D box until extended

    work.extendBox(box.id, 5, 9);
    expect(work.content().boxes[0].slices).toEqual([5, 9]);
    work.extendBox(box.id, 5, 3); // the other way: the range grows downwards
    expect(work.content().boxes[0].slices).toEqual([3, 9]);
    work.extendBox(box.id, 5, 6); // inside the range: nothing shrinks
    expect(work.content().boxes[0].slices).toEqual([3, 9]);
  });

  it("reads a stored 3D box's range back and sends it again", () => {
    const work = new WorkState(schema);
    const stored = { instance_id: 7, frame: 1, x: 1, y: 2, width: 3, height: 4, finding: "nodule",
      origin: "drawn" as const, suggestion_box_id: "", slice_first: 2, slice_last: 6 };
    work.load({ id: 1, case: 1, annotator: "ann", status: "draft", version: 1, etag: "", findings: {},
      report: {}, boxes: [stored, { ...stored, slice_first: null, slice_last: null }], review_comment: "",
      reviewed_by: null, submitted_at: null }, null);
    const [volume, flat] = work.content().boxes;
    expect(volume.slices).toEqual([2, 6]);
    expect(flat.slices).toBeUndefined();
  });
});
