/** The viewer's contract with the workspace. Coordinates are image pixels: top-left corner of
 * the image is (0, 0), x to the right (columns), y down (rows); frames are 1-based. */

export type ViewerImage = {
  /** The image, or for a stack its first slice (the id a thumbnail click shows). */
  instanceId: number;
  /** MedLoop's de-identified Part 10 endpoint, e.g. "/api/instances/12/file/" (same origin). */
  url: string;
  frames: number;
  rows: number;
  columns: number;
  label?: string;
  modality?: string;
  /** A CT or MR series shown as one stack: its single-frame slices in order along the slice
   * normal (the server's order, GET /api/cases/<case>/series/<series>/stack/). One thumbnail;
   * the wheel and the arrow keys move through the slices. */
  stack?: ViewerStack;
};

export type ViewerSlice = { instanceId: number; url: string; rows: number; columns: number };

export type ViewerStack = {
  seriesId: number;
  slices: ViewerSlice[];
  /** mm between neighbouring slices (null: one slice, or irregular). */
  sliceSpacing: number | null;
  /** What makes the series irregular (missing slices, mixed orientations, ...), shown over
   * the image; empty for a regular series. */
  problems: string[];
};

export type ViewerBox = {
  id: string;
  instanceId: number;
  frame: number;
  x: number;
  y: number;
  width: number;
  height: number;
  finding: string;
  color: string;
  kind: "drawn" | "suggestion";
  /** Shown beside the box, e.g. "Nodule 0.82". */
  label?: string;
  /** A 3D box: shown on every slice from first to last (1-based, in the stack's order) of
   * the stack its instance belongs to. */
  slices?: [number, number];
  selected?: boolean;
};

export type BoxGeometry = { x: number; y: number; width: number; height: number };

export type DrawnBox = Omit<ViewerBox, "id" | "finding" | "color" | "kind">;

/** Window in modality units (after rescale slope/intercept), e.g. lung -600/1500. */
/** `center`/`width` are in modality units (Hounsfield for CT). Projection images (DX, CR, MG,
 * ...) have no such scale, so there `relative` places the window as fractions of the file's own
 * window: centre at lower + center * range, width = width * range. */
export type WindowPreset = {
  name: string;
  center: number;
  width: number;
  key?: string;
  relative?: { center: number; width: number };
};

/** A picture over one image, the image's size in pixels (e.g. a Grad-CAM heatmap PNG). */
export type HeatmapOverlay = { instanceId: number; url: string; label?: string };

export type ViewerTool = "windowLevel" | "pan" | "zoom" | "rectangle";

export type RenderedInfo = { instanceId: number; frame: number; ms: number };

/** What is shown: the instance (for a stack, the slice's own instance) and its frame; for a
 * stack also its series, the slice's 1-based place and the number of slices. */
export type ShownImage = {
  instanceId: number;
  frame: number;
  seriesId?: number;
  slice?: number;
  slices?: number;
};

export interface ViewerHandle {
  /** The case's images as thumbnails; shows the first. */
  setImages(images: ViewerImage[]): Promise<void>;
  showImage(instanceId: number, frame?: number): Promise<void>;
  /** Axial, coronal and sagittal views of the shown series' volume, linked by crosshairs
   * (true), or back to the stack (false). Resolves to null when done, or to the reason the
   * series stays a stack (not a series, or irregular: its problems), also shown in the status. */
  showPlanes(on: boolean): Promise<string | null>;
  /** Each plane's slice (1-based) and slice count while the planes are shown, else null. */
  planes(): Record<"axial" | "coronal" | "sagittal", { slice: number; slices: number }> | null;
  currentImage(): ShownImage | null;
  /** Moves through the frames of a multi-frame image, or the slices of a stack (the mouse
   * wheel, the arrow keys and Page Up/Down do the same). */
  nextFrame(delta: number): void;
  setWindow(center: number, width: number): void;
  getWindow(): { center: number; width: number };
  applyPreset(name: string): void;
  invert(): void;
  reset(): void;
  zoomBy(factor: number): void;
  /** What a left drag does. */
  setTool(tool: ViewerTool): void;
  /** Replaces every box drawn; suggestions are dashed with their label. */
  setBoxes(boxes: ViewerBox[]): void;
  selectBox(id: string | null): void;
  /** Shows a heatmap over its image (resolves once loaded), or removes it with null. */
  setHeatmap(overlay: HeatmapOverlay | null): Promise<void>;
  heatmap(): HeatmapOverlay | null;
  onBoxDrawn(cb: (box: DrawnBox) => void): void;
  onBoxChanged(cb: (id: string, geometry: BoxGeometry) => void): void;
  onBoxClicked(cb: (id: string) => void): void;
  onRendered(cb: (info: RenderedInfo) => void): void;
  /** Loads images into the cache without showing them (the next case). */
  prefetch(images: ViewerImage[]): Promise<void>;
  destroy(): void;
}
