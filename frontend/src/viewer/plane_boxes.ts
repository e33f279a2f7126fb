/** 3D boxes in the three planes (issue 21, part 3): a box drawn on a series' slices is a block
 * in patient space (its pixels on every slice of its range, half a slice spacing before the
 * first and after the last); each plane view draws the rectangle its current plane cuts from
 * the block, and nothing when its plane lies outside the block. Drawn as SVG over the view and
 * redrawn after every render, so a crosshair move, a scroll or a zoom keeps them in place.
 *
 * Geometry from Cornerstone's imagePlaneModule of each slice (ImagePositionPatient, row and
 * column cosines, pixel spacing); world = patient coordinates (LPS, mm), as Cornerstone's. */

import { metaData, type Types, type VolumeViewport } from "@cornerstonejs/core";

import { SUGGESTION_DASH } from "./boxes";

/** A box on a stack: pixels (top-left corner of the image at 0, 0) and its slices, 0-based
 * and inclusive in the stack's order. */
export type PlaneBox = {
  id: string;
  x: number;
  y: number;
  width: number;
  height: number;
  first: number;
  last: number;
  color: string;
  label: string;
  dashed: boolean;
};

type Vec = [number, number, number];
type PlaneModule = {
  imagePositionPatient?: number[];
  rowCosines?: number[];
  columnCosines?: number[];
  rowPixelSpacing?: number | null;
  columnPixelSpacing?: number | null;
};

const SVG = "http://www.w3.org/2000/svg";

const add = (a: Vec, b: Vec): Vec => [a[0] + b[0], a[1] + b[1], a[2] + b[2]];
const scale = (a: Vec, s: number): Vec => [a[0] * s, a[1] * s, a[2] * s];
const dot = (a: Vec, b: Vec): number => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
const cross = (a: Vec, b: Vec): Vec => [
  a[1] * b[2] - a[2] * b[1],
  a[2] * b[0] - a[0] * b[2],
  a[0] * b[1] - a[1] * b[0],
];

/** The eight corners (world, mm) of ``box`` on the stack whose slices are ``imageIds``, or
 * null when a slice's geometry is unknown. ``spacing``: mm between neighbouring slices. */
export function boxCorners(box: PlaneBox, imageIds: string[], spacing: number): Vec[] | null {
  const planeOf = (index: number) =>
    metaData.get("imagePlaneModule", imageIds[index]) as PlaneModule | undefined;
  const first = planeOf(box.first);
  const last = planeOf(box.last);
  if (!first?.imagePositionPatient || !last?.imagePositionPatient) return null;
  const { rowCosines, columnCosines, rowPixelSpacing, columnPixelSpacing } = first;
  if (!rowCosines || !columnCosines || !rowPixelSpacing || !columnPixelSpacing) return null;
  const along = rowCosines as Vec;
  const down = columnCosines as Vec;
  let normal = cross(along, down);
  // Toward the later slices, whichever way the series was acquired.
  const ahead = planeOf(Math.min(imageIds.length - 1, box.first + 1))?.imagePositionPatient as Vec | undefined;
  if (ahead && dot(add(ahead, scale(first.imagePositionPatient as Vec, -1)), normal) < 0) {
    normal = scale(normal, -1);
  }
  const ends = [
    add(first.imagePositionPatient as Vec, scale(normal, -spacing / 2)),
    add(last.imagePositionPatient as Vec, scale(normal, spacing / 2)),
  ];
  const corners: Vec[] = [];
  for (const end of ends) {
    for (const u of [box.x, box.x + box.width]) {
      for (const v of [box.y, box.y + box.height]) {
        corners.push(add(add(end, scale(along, (u - 0.5) * columnPixelSpacing)), scale(down, (v - 0.5) * rowPixelSpacing)));
      }
    }
  }
  return corners;
}

/** The rectangle (canvas pixels) the view's current plane cuts from the block, or null when
 * the plane misses it. Exact for a block whose faces are parallel to the view's axes (the
 * views of the acquisition's own planes); else the cut's bounding rectangle. */
export function cutRectangle(
  viewport: VolumeViewport,
  corners: Vec[],
): { x: number; y: number; width: number; height: number } | null {
  const { focalPoint, viewPlaneNormal } = viewport.getCamera();
  if (!focalPoint || !viewPlaneNormal) return null;
  const normal = viewPlaneNormal as Vec;
  const depths = corners.map((c) => dot(c, normal));
  const at = dot(focalPoint as Vec, normal);
  const slack = 1e-3;
  if (at < Math.min(...depths) - slack || at > Math.max(...depths) + slack) return null;
  const points = corners.map((c) => viewport.worldToCanvas(c as Types.Point3));
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  const x = Math.min(...xs);
  const y = Math.min(...ys);
  return { x, y, width: Math.max(...xs) - x, height: Math.max(...ys) - y };
}

/** One view's SVG layer of box cuts: ``draw`` replaces its rectangles. */
export class PlaneBoxLayer {
  readonly svg: SVGSVGElement;

  constructor(frame: HTMLElement) {
    this.svg = document.createElementNS(SVG, "svg");
    this.svg.classList.add("ml-plane-boxes");
    this.svg.setAttribute("aria-hidden", "true");
    frame.append(this.svg);
  }

  draw(viewport: VolumeViewport, boxes: { box: PlaneBox; corners: Vec[] }[]): void {
    const rects: SVGElement[] = [];
    for (const { box, corners } of boxes) {
      const cut = cutRectangle(viewport, corners);
      if (!cut) continue;
      const group = document.createElementNS(SVG, "g");
      group.dataset.boxId = box.id;
      const rect = document.createElementNS(SVG, "rect");
      for (const [key, value] of Object.entries(cut)) rect.setAttribute(key, value.toFixed(1));
      rect.setAttribute("stroke", box.color);
      if (box.dashed) rect.setAttribute("stroke-dasharray", SUGGESTION_DASH);
      const text = document.createElementNS(SVG, "text");
      text.setAttribute("x", cut.x.toFixed(1));
      text.setAttribute("y", (cut.y - 4).toFixed(1));
      text.textContent = box.label;
      group.append(rect, text);
      rects.push(group);
    }
    this.svg.replaceChildren(...rects);
  }
}
