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

  it("accepts, edits or rejects a 3D suggestion as a 3D box over the suggested slices", () => {
    const annotation = { id: 1, case: 1, annotator: "ann", status: "draft" as const, version: 1, etag: "",
      findings: {}, report: {}, boxes: [], review_comment: "", reviewed_by: null, submitted_at: null };
    const suggested = { instance_id: 9, frame: 1, x: 4, y: 5, width: 6, height: 7, finding: "nodule", score: 0.9,
      series_id: 3, slices: [4, 8] as [number, number] };
    const suggestion = { id: 1, model_version: 2, finding_probabilities: {}, report_draft: {}, uncertainty: {},
      created_at: "", boxes: [{ ...suggested, id: "s0" }, { ...suggested, id: "s1", x: 20 }, { ...suggested, id: "s2" }] };
    const work = new WorkState(schema);
    work.load(annotation, suggestion);

    work.acceptSuggestion("s0");
    work.acceptSuggestion("s1", { x: 21, y: 5, width: 6, height: 7 });
    work.rejectSuggestion("s2");
    const [accepted, edited] = work.content().boxes;
    expect(accepted).toMatchObject({ instance_id: 9, slices: [4, 8], origin: "suggested_accepted", suggestion_box_id: "s0" });
    expect(edited).toMatchObject({ x: 21, slices: [4, 8], origin: "suggested_edited", suggestion_box_id: "s1" });
    expect(work.content().rejected_suggestion_boxes).toEqual(["s2"]);
    expect(work.pendingSuggestions()).toEqual([]);

    // Changing an accepted 3D suggestion's extent makes it an edited one.
    const box = work.boxes[0];
    work.extendBox(box.id, 6, 10);
    expect(work.content().boxes[0]).toMatchObject({ slices: [4, 10], origin: "suggested_edited" });
  });
});
