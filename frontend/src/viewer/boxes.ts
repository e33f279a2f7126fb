/** ViewerBox <-> RectangleROI annotations. The ViewerBox list is the truth; only the boxes of
 * the displayed frame exist as Cornerstone annotations, rebuilt whenever the image or the list
 * changes, so handles can be dragged with the tools' own interaction. */

import type { StackViewport, Types } from "@cornerstonejs/core";
import { annotation as annotationApi, RectangleROITool } from "@cornerstonejs/tools";
import type { Types as ToolsTypes } from "@cornerstonejs/tools";

import { boxToWorldPoints, worldPointsToBox, worldToImage } from "./geometry";
import type { BoxGeometry, ViewerBox } from "./types";

type Annotation = ToolsTypes.Annotation;
type AnnotationStyle = ToolsTypes.AnnotationStyle.AnnotationStyle;
const { state, selection, config } = annotationApi;

export const SUGGESTION_DASH = "6,4";
const LABEL_TEXT = "rgb(255, 255, 255)";
const LABEL_PLATE = "rgba(0, 0, 0, 0.85)";

/** Per-annotation style: the finding's colour in every state, wider when selected. */
function styleFor(box: ViewerBox): AnnotationStyle {
  const dash = box.kind === "suggestion" ? SUGGESTION_DASH : "";
  return {
    color: box.color,
    colorHighlighted: box.color,
    colorSelected: box.color,
    lineWidth: "2",
    lineWidthHighlighted: "3",
    lineWidthSelected: "3",
    lineDash: dash,
    lineDashHighlighted: dash,
    lineDashSelected: dash,
    // The label is white on a nearly opaque black plate: readable over any image (contrast
    // >= 13:1 even over white pixels), whatever the finding's colour, which the box keeps.
    textBoxColor: LABEL_TEXT,
    textBoxColorHighlighted: LABEL_TEXT,
    textBoxColorSelected: LABEL_TEXT,
    textBoxBackground: LABEL_PLATE,
    textBoxFontSize: "13px",
  };
}

export function boxText(box: ViewerBox): string {
  return box.label ?? box.finding;
}

export class BoxLayer {
  private boxes = new Map<string, ViewerBox>();
  /** Annotation UIDs this viewer put into (or drew in) Cornerstone's global annotation state. */
  private owned = new Set<string>();
  private selectedId: string | null = null;

  /** ``shows(box, current)``: whether a box belongs on the image on display (its own frame,
   * or for a 3D box any slice of its range). */
  constructor(
    private readonly viewport: StackViewport,
    private readonly shows: (box: ViewerBox, current: { instanceId: number; frame: number }) => boolean,
  ) {}

  setBoxes(boxes: ViewerBox[]): void {
    this.boxes = new Map(boxes.map((box) => [box.id, { ...box }]));
    const selected = boxes.find((box) => box.selected);
    if (selected) this.selectedId = selected.id;
    else if (this.selectedId && !this.boxes.has(this.selectedId)) this.selectedId = null;
  }

  get(id: string): ViewerBox | undefined {
    return this.boxes.get(id);
  }

  isOwned(uid: string): boolean {
    return this.owned.has(uid);
  }

  /** A rectangle the user has just drawn stays visible until the next setBoxes. */
  adoptDrawn(uid: string): void {
    this.owned.add(uid);
  }

  select(id: string | null): void {
    this.selectedId = id;
    selection.deselectAnnotation();
    if (id && this.owned.has(id)) selection.setAnnotationSelected(id, true, false);
  }

  /** Rebuilds the annotations for the frame on display. */
  sync(current: { instanceId: number; frame: number } | null, imageId: string | undefined): void {
    for (const uid of this.owned) state.removeAnnotation(uid);
    this.owned.clear();
    selection.deselectAnnotation();
    if (!current || !imageId) return;
    for (const box of this.boxes.values()) {
      if (!this.shows(box, current)) continue;
      const points = boxToWorldPoints(this.viewport, box);
      if (!points) continue;
      const annotation = RectangleROITool.createAnnotationForViewport(this.viewport, {
        annotationUID: box.id,
        data: {
          label: boxText(box),
          handles: { points, activeHandleIndex: null, textBox: { hasMoved: false } },
          cachedStats: {},
        },
      }) as Annotation;
      annotation.annotationUID = box.id;
      if (annotation.metadata) annotation.metadata.referencedImageId = imageId;
      state.addAnnotation(annotation, this.viewport.element);
      config.style.setAnnotationStyles(box.id, styleFor(box));
      this.owned.add(box.id);
    }
    if (this.selectedId && this.owned.has(this.selectedId)) {
      selection.setAnnotationSelected(this.selectedId, true, false);
    }
  }

  /** Pixel geometry of an annotation on the displayed image. */
  geometryOf(uid: string, size: { columns: number; rows: number }): BoxGeometry | null {
    const annotation = state.getAnnotation(uid);
    const points = annotation?.data?.handles?.points as Types.Point3[] | undefined;
    return points ? worldPointsToBox(this.viewport, points, size) : null;
  }

  /** Records a dragged box's new geometry and returns it. */
  commitGeometry(id: string, size: { columns: number; rows: number }): BoxGeometry | null {
    const box = this.boxes.get(id);
    const geometry = this.geometryOf(id, size);
    if (box && geometry) Object.assign(box, geometry);
    return geometry;
  }

  /** The box under a canvas point on the displayed frame: inside it, or within `slackPx`
   * canvas pixels of its edge; the smallest wins when boxes nest. */
  hit(canvasPoint: Types.Point2, current: { instanceId: number; frame: number }, slackPx = 6) {
    const world = this.viewport.canvasToWorld(canvasPoint);
    const image = worldToImage(this.viewport, world);
    if (!image) return null;
    const nearby = this.viewport.canvasToWorld([canvasPoint[0] + slackPx, canvasPoint[1]]);
    const nearbyImage = worldToImage(this.viewport, nearby);
    const slack = nearbyImage ? Math.abs(nearbyImage[0] - image[0]) : 0;
    let best: ViewerBox | null = null;
    for (const box of this.boxes.values()) {
      if (!this.shows(box, current)) continue;
      const inside =
        image[0] >= box.x - slack &&
        image[0] <= box.x + box.width + slack &&
        image[1] >= box.y - slack &&
        image[1] <= box.y + box.height + slack;
      if (inside && (!best || box.width * box.height < best.width * best.height)) best = box;
    }
    return best;
  }

  clear(): void {
    for (const uid of this.owned) state.removeAnnotation(uid);
    this.owned.clear();
    this.boxes.clear();
  }
}
