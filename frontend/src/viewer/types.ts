/** The viewer's contract with the workspace. Coordinates are image pixels: top-left corner of
 * the image is (0, 0), x to the right (columns), y down (rows); frames are 1-based. */

export type ViewerImage = {
  instanceId: number;
  /** MedLoop's de-identified Part 10 endpoint, e.g. "/api/instances/12/file/" (same origin). */
  url: string;
  frames: number;
  rows: number;
  columns: number;
  label?: string;
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

export interface ViewerHandle {
  /** The case's images as thumbnails; shows the first. */
  setImages(images: ViewerImage[]): Promise<void>;
  showImage(instanceId: number, frame?: number): Promise<void>;
  currentImage(): { instanceId: number; frame: number } | null;
  /** Moves through the frames of a multi-frame image (the mouse wheel does the same). */
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
