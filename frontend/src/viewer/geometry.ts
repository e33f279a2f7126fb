/** Image pixel space (top-left corner of the first pixel is (0, 0)) <-> Cornerstone world space,
 * through the displayed image's own index<->world transform. Works for images without position
 * or orientation (radiographs), where the metadata-based helpers of core have nothing to use. */

import type { StackViewport, Types } from "@cornerstonejs/core";

import type { BoxGeometry } from "./types";

type IndexTransform = {
  indexToWorld(index: Types.Point3): Types.Point3;
  worldToIndex(world: Types.Point3): Types.Point3;
};

function transform(viewport: StackViewport): IndexTransform | null {
  const data = viewport.getImageData();
  return (data?.imageData as unknown as IndexTransform | undefined) ?? null;
}

/** Pixel centres are integers in index space; pixel corners are integers in image space. */
export function imageToWorld(viewport: StackViewport, x: number, y: number): Types.Point3 | null {
  const t = transform(viewport);
  return t ? ([...t.indexToWorld([x - 0.5, y - 0.5, 0])] as Types.Point3) : null;
}

export function worldToImage(viewport: StackViewport, world: Types.Point3): [number, number] | null {
  const t = transform(viewport);
  if (!t) return null;
  const index = t.worldToIndex(world);
  return [index[0] + 0.5, index[1] + 0.5];
}

/** The four corners in the order RectangleROITool keeps them (0/3 and 1/2 are diagonals). */
export function boxToWorldPoints(viewport: StackViewport, box: BoxGeometry): Types.Point3[] | null {
  const corners: [number, number][] = [
    [box.x, box.y],
    [box.x + box.width, box.y],
    [box.x, box.y + box.height],
    [box.x + box.width, box.y + box.height],
  ];
  const points = corners.map(([x, y]) => imageToWorld(viewport, x, y));
  return points.every((p) => p !== null) ? (points as Types.Point3[]) : null;
}

/** The axis-aligned box around the points, rounded to 0.1 pixel and clipped to the image. */
export function worldPointsToBox(
  viewport: StackViewport,
  points: Types.Point3[],
  size: { columns: number; rows: number },
): BoxGeometry | null {
  const image = points.map((p) => worldToImage(viewport, p));
  if (image.length === 0 || image.some((p) => p === null)) return null;
  const xs = image.map((p) => clamp(p![0], 0, size.columns));
  const ys = image.map((p) => clamp(p![1], 0, size.rows));
  const x = Math.min(...xs);
  const y = Math.min(...ys);
  return {
    x: round(x),
    y: round(y),
    width: round(Math.max(...xs) - x),
    height: round(Math.max(...ys) - y),
  };
}

function clamp(value: number, low: number, high: number): number {
  return Math.min(high, Math.max(low, value));
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}
