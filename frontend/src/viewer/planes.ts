/** Three planes of one series' volume (issue 21, part 2): axial, coronal and sagittal
 * Cornerstone3D volume viewports of the same StreamingImageVolume, linked by Cornerstone's
 * CrosshairsTool (a click or a drag in one view moves the other two to that point). Only a
 * regular series (the server found no gap, no varying spacing, one orientation) is built as a
 * volume; the viewer keeps an irregular one as a stack and says why. */

import {
  cache,
  Enums,
  imageLoader,
  RenderingEngine,
  setVolumesForViewports,
  utilities,
  volumeLoader,
  type Types,
  type VolumeViewport,
} from "@cornerstonejs/core";
import { CrosshairsTool, Enums as ToolsEnums, ToolGroupManager } from "@cornerstonejs/tools";

import { stackImageIds } from "./imageIds";
import { boxCorners, PlaneBoxLayer, type PlaneBox } from "./plane_boxes";
import type { ViewerStack } from "./types";

export const PLANES = ["axial", "coronal", "sagittal"] as const;
export type Plane = (typeof PLANES)[number];

const ORIENTATION: Record<Plane, Enums.OrientationAxis> = {
  axial: Enums.OrientationAxis.AXIAL,
  coronal: Enums.OrientationAxis.CORONAL,
  sagittal: Enums.OrientationAxis.SAGITTAL,
};
// The crosshair line of each view takes the colour of that view's frame.
const COLOUR: Record<Plane, string> = {
  axial: "rgb(230, 80, 80)",
  coronal: "rgb(80, 200, 120)",
  sagittal: "rgb(90, 150, 240)",
};

export type PlanesHandle = {
  setVoiRange(range: Types.VOIRange): void;
  /** The boxes of this series (3D boxes over their slices, 2D ones on their slice), each
   * drawn as the rectangle the view's plane cuts from it, in every view whose plane meets it. */
  setBoxes(boxes: PlaneBox[]): void;
  /** The slice (1-based) each view shows, and how many it has along its own normal. */
  slices(): Record<Plane, { slice: number; slices: number }>;
  destroy(): void;
};

let planesCount = 0;

/** Why a stack cannot be shown as three planes, or null when it can. */
export function planesRefusal(stack: ViewerStack | undefined): string | null {
  if (!stack || stack.slices.length < 2) {
    return "Three planes need a CT or MR series of two or more slices.";
  }
  if (stack.problems.length) {
    return `This series is not a regular volume, so it stays a stack: ${stack.problems.join(" ")}`;
  }
  return null;
}

/** Builds the three views inside ``container`` (emptied first) and resolves once every slice
 * is loaded and each view shows the volume's middle. ``voiRange`` is the window to start
 * with (modality units: HU on CT). */
export async function createPlanes(
  container: HTMLElement,
  stack: ViewerStack,
  voiRange: Types.VOIRange | undefined,
): Promise<PlanesHandle> {
  const n = ++planesCount;
  const engineId = `medloop-planes-engine-${n}`;
  const toolGroupId = `medloop-planes-tools-${n}`;
  const volumeId = `cornerstoneStreamingImageVolume:medloop-series-${stack.seriesId}-${n}`;
  const ids = stackImageIds(stack);
  // The volume is built from every slice's geometry (ImagePositionPatient, orientation,
  // spacing), which the wadouri loader knows only once it has read the slice's file.
  await Promise.all(ids.map((id) => imageLoader.loadAndCacheImage(id)));

  container.replaceChildren();
  const views = new Map<
    Plane,
    { host: HTMLDivElement; label: HTMLElement; viewportId: string; boxes: PlaneBoxLayer }
  >();
  for (const plane of PLANES) {
    const frame = document.createElement("div");
    frame.className = "ml-plane";
    frame.dataset.plane = plane;
    frame.style.borderColor = COLOUR[plane];
    const host = document.createElement("div");
    host.className = "ml-plane-viewport";
    host.setAttribute("role", "img");
    host.setAttribute("aria-label", `${plane} view`);
    const label = document.createElement("div");
    label.className = "ml-plane-label";
    label.setAttribute("aria-live", "polite");
    frame.append(host, label);
    container.append(frame);
    const boxes = new PlaneBoxLayer(frame);
    views.set(plane, { host, label, viewportId: `medloop-plane-${plane}-${n}`, boxes });
  }

  const engine = new RenderingEngine(engineId);
  engine.setViewports(
    PLANES.map((plane) => ({
      viewportId: views.get(plane)!.viewportId,
      type: Enums.ViewportType.ORTHOGRAPHIC,
      element: views.get(plane)!.host,
      defaultOptions: { orientation: ORIENTATION[plane], background: [0, 0, 0] as Types.Point3 },
    })),
  );
  const volume = await volumeLoader.createAndCacheVolume(volumeId, { imageIds: ids });
  volume.load();
  const viewportIds = PLANES.map((plane) => views.get(plane)!.viewportId);
  await setVolumesForViewports(engine, [{ volumeId }], viewportIds);

  const group = ToolGroupManager.createToolGroup(toolGroupId);
  if (!group) throw new Error(`Tool group ${toolGroupId} exists already.`);
  const colourOf = new Map(PLANES.map((plane) => [views.get(plane)!.viewportId, COLOUR[plane]]));
  group.addTool(CrosshairsTool.toolName, {
    getReferenceLineColor: (viewportId: string) => colourOf.get(viewportId) ?? "white",
  });
  for (const viewportId of viewportIds) group.addViewport(viewportId, engineId);
  group.setToolActive(CrosshairsTool.toolName, {
    bindings: [{ mouseButton: ToolsEnums.MouseBindings.Primary }],
  });

  const viewportOf = (plane: Plane) => engine.getViewport(views.get(plane)!.viewportId) as VolumeViewport;

  function sliceOf(plane: Plane): { slice: number; slices: number } {
    const data = utilities.getImageSliceDataForVolumeViewport(viewportOf(plane));
    return { slice: (data?.imageIndex ?? 0) + 1, slices: data?.numberOfSlices ?? 0 };
  }

  function label(plane: Plane): void {
    const { slice, slices } = sliceOf(plane);
    const { host, label } = views.get(plane)!;
    const name = plane[0].toUpperCase() + plane.slice(1);
    label.textContent = `${name} ${slice} / ${slices}`;
    const frame = host.parentElement!;
    frame.dataset.slice = String(slice);
    frame.dataset.slices = String(slices);
    const range = viewportOf(plane).getProperties()?.voiRange;
    if (range) {
      const { windowCenter, windowWidth } = utilities.windowLevel.toWindowLevel(range.lower, range.upper);
      frame.dataset.window = `W ${Math.round(windowWidth)} L ${Math.round(windowCenter)}`;
    }
  }

  const onCamera = () => PLANES.forEach(label);
  // Each box as a block in patient space, computed once per setBoxes; cut again per render.
  let blocks: { box: PlaneBox; corners: NonNullable<ReturnType<typeof boxCorners>> }[] = [];
  const spacing = stack.sliceSpacing ?? 1;
  const drawBoxes = new Map(
    PLANES.map((plane) => [plane, () => views.get(plane)!.boxes.draw(viewportOf(plane), blocks)]),
  );
  for (const plane of PLANES) {
    const { host } = views.get(plane)!;
    host.addEventListener(Enums.Events.CAMERA_MODIFIED, onCamera);
    host.addEventListener(Enums.Events.IMAGE_RENDERED, drawBoxes.get(plane)!);
  }

  function setBoxes(boxes: PlaneBox[]): void {
    blocks = boxes.flatMap((box) => {
      const corners = boxCorners(box, ids, spacing);
      return corners ? [{ box, corners }] : [];
    });
    for (const plane of PLANES) drawBoxes.get(plane)!();
    container.dataset.boxes = String(blocks.length);
  }

  function setVoiRange(range: Types.VOIRange): void {
    for (const plane of PLANES) viewportOf(plane).setProperties({ voiRange: { ...range } });
    engine.render();
    onCamera();
  }

  if (voiRange) setVoiRange(voiRange);
  else engine.render();
  onCamera();
  container.dataset.ready = "true";

  return {
    setVoiRange,
    setBoxes,
    slices: () =>
      Object.fromEntries(PLANES.map((plane) => [plane, sliceOf(plane)])) as Record<
        Plane,
        { slice: number; slices: number }
      >,
    destroy() {
      for (const plane of PLANES) {
        const { host } = views.get(plane)!;
        host.removeEventListener(Enums.Events.CAMERA_MODIFIED, onCamera);
        host.removeEventListener(Enums.Events.IMAGE_RENDERED, drawBoxes.get(plane)!);
      }
      ToolGroupManager.destroyToolGroup(toolGroupId);
      engine.destroy();
      cache.removeVolumeLoadObject(volumeId);
      container.replaceChildren();
      delete container.dataset.ready;
      delete container.dataset.boxes;
    },
  };
}
