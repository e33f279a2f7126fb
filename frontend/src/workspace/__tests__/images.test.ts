import { describe, expect, it } from "vitest";

import { imagesOf, isStackSeries, type SeriesStack } from "../images";
import type { CaseDetail, Series } from "../types";

function series(id: number, modality: string, ids: number[], frames = 1): Series {
  return {
    id,
    modality,
    description: "",
    instances: ids.map((i) => ({ id: i, rows: 64, columns: 64, number_of_frames: frames })),
  };
}

const caseOf = (...list: Series[]) => ({ id: 9, series: list }) as unknown as CaseDetail;

function stack(seriesId: number, ids: number[], problems: string[] = []): SeriesStack {
  return {
    series_id: seriesId,
    modality: "CT",
    instance_ids: ids,
    sorted_by: "position",
    slice_spacing: 2.5,
    pixel_spacing: [0.7, 0.7],
    regular: problems.length === 0,
    problems,
  };
}

describe("isStackSeries", () => {
  it("stacks CT and MR series of single-frame slices, never radiographs or multi-frame files", () => {
    expect(isStackSeries(series(1, "CT", [1, 2, 3]))).toBe(true);
    expect(isStackSeries(series(1, "mr", [1, 2]))).toBe(true);
    expect(isStackSeries(series(1, "CT", [1]))).toBe(false);
    expect(isStackSeries(series(1, "DX", [1, 2]))).toBe(false);
    expect(isStackSeries(series(1, "CT", [1, 2], 5))).toBe(false);
  });
});

describe("imagesOf", () => {
  it("makes one image per series stack, its slices in the server's order", () => {
    const c = caseOf(series(4, "DX", [1]), series(5, "CT", [10, 11, 12, 13]));
    const images = imagesOf(c, new Map([[5, stack(5, [12, 10, 13, 11], ["Missing slices: ..."])]]));
    expect(images).toHaveLength(2);
    expect(images[0].stack).toBeUndefined();
    const ct = images[1];
    expect(ct.instanceId).toBe(12);
    expect(ct.stack?.slices.map((s) => s.instanceId)).toEqual([12, 10, 13, 11]);
    expect(ct.stack?.slices[0].url).toBe("/api/instances/12/file/");
    expect(ct.stack?.problems).toEqual(["Missing slices: ..."]);
    expect(ct.stack?.sliceSpacing).toBeNull(); // an irregular series has no one spacing
  });

  it("shows a series slice by slice when its stack is unknown", () => {
    const images = imagesOf(caseOf(series(5, "CT", [10, 11])));
    expect(images.map((i) => i.instanceId)).toEqual([10, 11]);
    expect(images.every((i) => i.stack === undefined)).toBe(true);
  });

  it("keeps the regular spacing", () => {
    const images = imagesOf(caseOf(series(5, "CT", [10, 11])), new Map([[5, stack(5, [11, 10])]]));
    expect(images[0].stack?.sliceSpacing).toBe(2.5);
  });
});
