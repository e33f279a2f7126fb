/** createViewer: one Cornerstone3D stack viewport for a case's images, with window/level,
 * presets, zoom/pan, frame and slice scrolling, thumbnails and boxes (RectangleROI
 * annotations). A radiograph is one stack (its frames); a CT or MR series is one stack of its
 * single-frame slices in the server's order along the slice normal, with a slice indicator and
 * its problems (a gap, mixed orientations) written over the image. Switching image or series
 * starts from the file's own window. */

import {
  Enums,
  eventTarget,
  imageLoader,
  metaData,
  RenderingEngine,
  utilities,
  type StackViewport,
  type Types,
} from "@cornerstonejs/core";
import {
  cancelActiveManipulations,
  Enums as ToolsEnums,
  ToolGroupManager,
  utilities as toolsUtilities,
} from "@cornerstonejs/tools";
import type { Types as ToolsTypes } from "@cornerstonejs/tools";

import { BOX_TOOL, DEFAULT_TOOL, FIXED_BINDINGS, PRIMARY_BUTTON, PRIMARY_TOOLS } from "./bindings";
import { BoxLayer, boxText } from "./boxes";
import { HeatmapLayer } from "./heatmap";
import { frameImageIds, stackImageIds } from "./imageIds";
import type { PlaneBox } from "./plane_boxes";
import { createPlanes, planesRefusal, type PlanesHandle } from "./planes";
import { findPreset, isDefaultPreset } from "./presets";
import { ensureCornerstone } from "./setup";
import { ThumbnailStrip } from "./thumbnails";
import type {
  BoxGeometry,
  DrawnBox,
  HeatmapOverlay,
  RenderedInfo,
  ShownImage,
  ViewerHandle,
  ViewerBox,
  ViewerImage,
  ViewerStack,
  ViewerTool,
} from "./types";
// Inlined and injected by the viewer itself: the Django tag links only an entry's own CSS, not
// that of the chunks it imports.
import viewerCss from "./viewer.css?inline";

type Current = { instanceId: number; frame: number };
type Pending = Current & { imageId: string; start: number };
type AnnotationEvent = CustomEvent<{ annotation: ToolsTypes.Annotation }>;

/** A drag shorter than this (canvas pixels) is a click; a drawn box smaller (image pixels) is noise. */
const CLICK_SLOP_PX = 4;
const MIN_BOX_PX = 2;

let viewerCount = 0;

function injectStyles(): void {
  if (document.getElementById("ml-viewer-styles")) return;
  const style = document.createElement("style");
  style.id = "ml-viewer-styles";
  style.textContent = viewerCss;
  document.head.append(style);
}

export async function createViewer(
  element: HTMLElement,
  thumbnails?: HTMLElement,
): Promise<ViewerHandle> {
  await ensureCornerstone();
  injectStyles();
  const n = ++viewerCount;
  const engineId = `medloop-engine-${n}`;
  const viewportId = `medloop-viewport-${n}`;
  const toolGroupId = `medloop-tools-${n}`;

  element.classList.add("ml-viewer");
  const host = document.createElement("div");
  host.className = "ml-viewport";
  host.tabIndex = 0;
  host.setAttribute("role", "img");
  host.setAttribute("aria-label", "DICOM image");
  const overlay = document.createElement("div");
  overlay.className = "ml-overlay";
  overlay.setAttribute("aria-live", "polite");
  const status = document.createElement("div");
  status.className = "ml-status";
  status.setAttribute("role", "status");
  // A stack's place ("Slice 12 / 60") and what makes its series irregular.
  const sliceIndicator = document.createElement("div");
  sliceIndicator.className = "ml-slice-indicator";
  sliceIndicator.setAttribute("aria-live", "polite");
  sliceIndicator.hidden = true;
  const stackWarning = document.createElement("div");
  stackWarning.className = "ml-stack-warning";
  stackWarning.setAttribute("role", "alert");
  stackWarning.hidden = true;
  // Axial, coronal and sagittal views of a regular series, over the stack when shown.
  const planesBox = document.createElement("div");
  planesBox.className = "ml-planes";
  planesBox.hidden = true;
  element.append(host, planesBox, overlay, sliceIndicator, stackWarning, status);

  const engine = new RenderingEngine(engineId);
  engine.enableElement({
    viewportId,
    type: Enums.ViewportType.STACK,
    element: host as HTMLDivElement,
    defaultOptions: { background: [0, 0, 0] as Types.Point3 },
  });
  const viewport = engine.getViewport(viewportId) as StackViewport;

  const group = ToolGroupManager.createToolGroup(toolGroupId);
  if (!group) throw new Error(`Tool group ${toolGroupId} exists already.`);
  for (const name of new Set(Object.values(PRIMARY_TOOLS))) {
    if (name === BOX_TOOL) {
      group.addTool(name, {
        calculateStats: false,
        getTextLines: (data: { label?: string }) => (data.label ? [data.label] : []),
      });
    } else {
      group.addTool(name);
    }
  }
  group.addViewport(viewportId, engineId);
  for (const { tool, mouseButton, modifierKey } of FIXED_BINDINGS) {
    group.setToolActive(tool, { bindings: [modifierKey ? { mouseButton, modifierKey } : { mouseButton }] });
  }

  const boxes = new BoxLayer(viewport, (box, shown) => {
    if (!box.slices) return box.instanceId === shown.instanceId && box.frame === shown.frame;
    // A 3D box: on every slice of its range in its own series' stack.
    const stack = known.get(box.instanceId)?.stack;
    if (!stack || known.get(shown.instanceId)?.stack !== stack) return false;
    const at = (sliceIndex.get(shown.instanceId) ?? -1) + 1;
    return at >= box.slices[0] && at <= box.slices[1];
  });
  const heatmap = new HeatmapLayer(host, viewport);
  const strip = new ThumbnailStrip(thumbnails, (id) => {
    showImage(id).catch(() => undefined); // shown in the status line
  });

  let images: ViewerImage[] = [];
  const known = new Map<number, ViewerImage>();
  // A stack's slices: slice instance -> its place in the stack (0-based).
  const sliceIndex = new Map<number, number>();
  let current: Current | null = null;
  let stackOf: string | null = null;
  let pending: Pending | null = null;
  let requested = 0;
  let fileWindow: { lower: number; upper: number } | null = null;
  let planes: PlanesHandle | null = null;
  // Every box of the case as last set: the planes draw those of their series.
  let allBoxes: ViewerBox[] = [];

  const drawnListeners: ((box: DrawnBox) => void)[] = [];
  const changedListeners: ((id: string, geometry: BoxGeometry) => void)[] = [];
  const clickedListeners: ((id: string) => void)[] = [];
  const renderedListeners: ((info: RenderedInfo) => void)[] = [];

  function remember(list: ViewerImage[]): void {
    for (const image of list) {
      known.set(image.instanceId, image);
      image.stack?.slices.forEach((slice, index) => {
        known.set(slice.instanceId, image);
        sliceIndex.set(slice.instanceId, index);
      });
    }
  }

  function currentImage(): ViewerImage | undefined {
    return current ? known.get(current.instanceId) : undefined;
  }

  function size(): { columns: number; rows: number } {
    const image = viewport.getCornerstoneImage?.();
    const info = currentImage();
    const slice = info?.stack && current ? info.stack.slices[sliceIndex.get(current.instanceId) ?? 0] : undefined;
    return {
      columns: image?.columns ?? slice?.columns ?? info?.columns ?? 0,
      rows: image?.rows ?? slice?.rows ?? info?.rows ?? 0,
    };
  }

  /** What ``showImage(instanceId, frame)`` shows: the Cornerstone stack, the index in it, and
   * the instance and frame that then are current. */
  function resolve(instanceId: number, frame: number) {
    const image = known.get(instanceId);
    if (!image) throw new Error(`Image ${instanceId} is not part of this case.`);
    if (image.stack && image.stack.slices.length) {
      const index = sliceIndex.get(instanceId) ?? 0;
      return {
        image,
        key: `series:${image.stack.seriesId}`,
        ids: stackImageIds(image.stack),
        index,
        shown: { instanceId: image.stack.slices[index].instanceId, frame: 1 },
      };
    }
    const frames = Math.max(1, image.frames || 1);
    const target = Math.min(frames, Math.max(1, Math.round(frame)));
    return {
      image,
      key: `instance:${instanceId}`,
      ids: frameImageIds(image),
      index: target - 1,
      shown: { instanceId, frame: target },
    };
  }

  function pixelSpacingText(imageId: string | undefined): string | null {
    if (!imageId) return null;
    const plane = metaData.get("imagePlaneModule", imageId) as
      | { rowPixelSpacing?: number | null; columnPixelSpacing?: number | null }
      | undefined;
    const row = plane?.rowPixelSpacing, column = plane?.columnPixelSpacing;
    if (!row || !column) return null;
    return `${column.toFixed(2)} × ${row.toFixed(2)} mm`;
  }

  function updateStackInfo(): void {
    const image = currentImage();
    const stack = image?.stack;
    if (!stack || !current) {
      sliceIndicator.hidden = stackWarning.hidden = true;
      sliceIndicator.textContent = stackWarning.textContent = "";
      delete element.dataset.slice;
      delete element.dataset.slices;
      return;
    }
    const index = (sliceIndex.get(current.instanceId) ?? 0) + 1;
    const parts = [`Slice ${index} / ${stack.slices.length}`];
    if (stack.sliceSpacing) parts.push(`${stack.sliceSpacing.toFixed(2)} mm apart`);
    const spacing = pixelSpacingText(viewport.getCurrentImageId());
    if (spacing) parts.push(`pixels ${spacing}`);
    sliceIndicator.textContent = parts.join(" · ");
    sliceIndicator.hidden = false;
    element.dataset.slice = String(index);
    element.dataset.slices = String(stack.slices.length);
    stackWarning.textContent = stack.problems.length
      ? `Irregular series: ${stack.problems.join(" ")}`
      : "";
    stackWarning.hidden = !stack.problems.length;
  }

  function setStatus(text: string, error = false): void {
    status.textContent = text;
    status.classList.toggle("is-error", error);
  }

  function updateOverlay(): void {
    const info = currentImage();
    if (!info || !current) {
      overlay.textContent = "";
      return;
    }
    const { center, width } = getWindow();
    const parts = [`W ${Math.round(width)} L ${Math.round(center)}`];
    if (info.frames > 1) parts.push(`Frame ${current.frame}/${info.frames}`);
    if (viewport.getProperties().invert) parts.push("Inverted");
    // Cornerstone's zoom (about 1 when fitted), for tests and the console.
    element.dataset.zoom = viewport.getZoom().toFixed(3);
    overlay.textContent = parts.join(" · ");
  }

  async function showImage(instanceId: number, frame = 1): Promise<void> {
    const { image, key, ids, index, shown } = resolve(instanceId, frame);
    const request = ++requested;
    pending = { ...shown, imageId: ids[index], start: performance.now() };
    const slow = window.setTimeout(() => request === requested && setStatus("Loading…"), 150);
    try {
      if (stackOf !== key) {
        closePlanes();
        toolsUtilities.stackPrefetch.disable(host as HTMLDivElement);
        await viewport.setStack(ids, index);
        stackOf = key;
        fileWindow = { ...(viewport.getProperties().voiRange ?? { lower: 0, upper: 1 }) };
        // A series' slices load ahead of the scroll (Cornerstone's stack prefetch).
        if (image.stack) toolsUtilities.stackPrefetch.enable(host as HTMLDivElement);
      } else if (viewport.getCurrentImageIdIndex() !== index) {
        await viewport.setImageIdIndex(index);
      } else {
        viewport.render();
      }
    } catch (error) {
      if (request === requested) {
        pending = null;
        setStatus(`Could not show the image: ${describe(error)}`, true);
      }
      throw error;
    } finally {
      window.clearTimeout(slow);
    }
    if (request !== requested) return; // a later request has taken over
    setStatus("");
    current = { ...shown };
    element.dataset.instanceId = String(current.instanceId);
    boxes.sync(current, viewport.getCurrentImageId());
    strip.markCurrent(image.instanceId);
    updateStackInfo();
    viewport.render();
  }

  function nextFrame(delta: number): void {
    const base = pending ?? current;
    if (!base) return;
    const image = known.get(base.instanceId);
    const slices = image?.stack?.slices;
    if (slices?.length) {
      const at = sliceIndex.get(base.instanceId) ?? 0;
      const next = Math.min(slices.length - 1, Math.max(0, at + Math.trunc(delta)));
      if (next !== at) showImage(slices[next].instanceId).catch(() => undefined);
      return;
    }
    if (!image || image.frames <= 1) return;
    const frame = Math.min(image.frames, Math.max(1, base.frame + Math.trunc(delta)));
    if (frame === base.frame) return;
    showImage(base.instanceId, frame).catch(() => undefined);
  }

  function setWindow(center: number, width: number): void {
    setRange(utilities.windowLevel.toLowHighRange(Math.max(1, width), center));
  }

  /** The window of the stack and, when shown, of the three planes. */
  function setRange(range: Types.VOIRange): void {
    viewport.setProperties({ voiRange: { ...range } });
    planes?.setVoiRange(range);
    viewport.render();
  }

  /** The boxes on ``stack``'s slices, as the planes draw them: a 3D box over its slices, a
   * 2D one on its own slice. */
  function planeBoxes(stack: ViewerStack): PlaneBox[] {
    return allBoxes.flatMap((box) => {
      if (known.get(box.instanceId)?.stack !== stack || box.frame !== 1) return [];
      const at = sliceIndex.get(box.instanceId) ?? 0;
      const [first, last] = box.slices ? [box.slices[0] - 1, box.slices[1] - 1] : [at, at];
      return [
        {
          id: box.id,
          x: box.x,
          y: box.y,
          width: box.width,
          height: box.height,
          first,
          last,
          color: box.color,
          label: boxText(box),
          dashed: box.kind === "suggestion",
        },
      ];
    });
  }

  function closePlanes(): void {
    planes?.destroy();
    planes = null;
    planesBox.hidden = true;
    element.dataset.layout = "stack";
  }

  async function showPlanes(on: boolean): Promise<string | null> {
    if (!on) {
      closePlanes();
      return null;
    }
    if (planes) return null;
    const stack = currentImage()?.stack;
    const refusal = planesRefusal(stack);
    if (refusal || !stack) {
      setStatus(refusal ?? "", true);
      return refusal;
    }
    setStatus("Loading the volume…");
    planesBox.hidden = false;
    element.dataset.layout = "planes";
    try {
      planes = await createPlanes(planesBox, stack, viewport.getProperties().voiRange);
      planes.setBoxes(planeBoxes(stack));
    } catch (error) {
      closePlanes();
      const text = `Could not show the three planes: ${describe(error)}`;
      setStatus(text, true);
      return text;
    }
    setStatus("");
    return null;
  }

  function getWindow(): { center: number; width: number } {
    const range = viewport.getProperties().voiRange;
    if (!range) return { center: Number.NaN, width: Number.NaN };
    const { windowCenter, windowWidth } = utilities.windowLevel.toWindowLevel(
      range.lower,
      range.upper,
    );
    return { center: windowCenter, width: windowWidth };
  }

  function applyPreset(name: string): void {
    const preset = findPreset(name);
    if (!preset) throw new Error(`Unknown window preset ${name}.`);
    if (isDefaultPreset(preset)) {
      if (fileWindow) setRange(fileWindow);
      return;
    }
    const imageId = viewport.getCurrentImageId();
    const modality = imageId
      ? (metaData.get("generalSeriesModule", imageId) as { modality?: string } | undefined)?.modality
      : undefined;
    if (preset.relative && fileWindow && modality !== "CT") {
      const range = fileWindow.upper - fileWindow.lower;
      setWindow(fileWindow.lower + preset.relative.center * range, preset.relative.width * range);
      return;
    }
    setWindow(preset.center, preset.width);
  }

  function setTool(tool: ViewerTool): void {
    const target = PRIMARY_TOOLS[tool];
    if (!target) throw new Error(`Unknown tool ${tool}.`);
    for (const name of new Set(Object.values(PRIMARY_TOOLS))) {
      // Passive keeps the other bindings, and lets boxes' handles be dragged with any tool.
      if (name !== target) group!.setToolPassive(name);
    }
    group!.setToolActive(target, { bindings: [{ mouseButton: PRIMARY_BUTTON }] });
    element.dataset.tool = tool;
  }

  // --- Cornerstone events -> the workspace's callbacks -------------------------------------

  const onImageRendered = () => {
    updateOverlay();
    heatmap.sync(current?.instanceId ?? null, size());
    if (!pending || viewport.getCurrentImageId() !== pending.imageId) return;
    const info = { instanceId: pending.instanceId, frame: pending.frame };
    const ms = performance.now() - pending.start;
    pending = null;
    for (const cb of renderedListeners) cb({ ...info, ms });
  };

  const onAnnotationCompleted = (event: Event) => {
    const { annotation } = (event as AnnotationEvent).detail;
    if (annotation.metadata?.toolName !== BOX_TOOL || !current) return;
    if (annotation.metadata.referencedImageId !== viewport.getCurrentImageId()) return;
    const uid = annotation.annotationUID!;
    if (boxes.get(uid)) return; // a box of ours, moved: reported on mouse up
    boxes.adoptDrawn(uid);
    const geometry = boxes.geometryOf(uid, size());
    if (!geometry || geometry.width < MIN_BOX_PX || geometry.height < MIN_BOX_PX) {
      boxes.sync(current, viewport.getCurrentImageId());
      viewport.render();
      return;
    }
    const drawn: DrawnBox = { instanceId: current.instanceId, frame: current.frame, ...geometry };
    for (const cb of drawnListeners) cb(drawn);
  };

  const dirty = new Set<string>();
  const onAnnotationModified = (event: Event) => {
    const uid = (event as AnnotationEvent).detail.annotation?.annotationUID;
    if (uid && boxes.get(uid) && boxes.isOwned(uid)) dirty.add(uid);
  };
  const flushChanged = () => {
    window.setTimeout(() => {
      for (const id of [...dirty]) {
        dirty.delete(id);
        const geometry = boxes.commitGeometry(id, size());
        if (geometry) for (const cb of changedListeners) cb(id, geometry);
      }
    }, 0);
  };

  let down: { x: number; y: number } | null = null;
  const onPointerDown = (event: PointerEvent) => {
    down = event.button === 0 ? { x: event.clientX, y: event.clientY } : null;
  };
  const onPointerUp = (event: PointerEvent) => {
    flushChanged();
    const start = down;
    down = null;
    if (!start || !current || event.button !== 0) return;
    if (Math.hypot(event.clientX - start.x, event.clientY - start.y) > CLICK_SLOP_PX) return;
    const rect = host.getBoundingClientRect();
    const box = boxes.hit([event.clientX - rect.left, event.clientY - rect.top], current);
    if (!box) return;
    boxes.select(box.id);
    viewport.render();
    for (const cb of clickedListeners) cb(box.id);
  };
  // RectangleROI turns a plain click into "move, then click again" drawing; here a box is drawn
  // by dragging, so a click cancels it. This listener was added before the tool's own, so
  // cancelling (which removes the tool's listener) keeps the tool from seeing this event.
  type PointsDetail = { startPoints: { canvas: Types.Point2 }; currentPoints: { canvas: Types.Point2 } };
  const onToolsMouseUp = (event: Event) => {
    if (element.dataset.tool !== "rectangle") return;
    const { startPoints, currentPoints } = (event as CustomEvent<PointsDetail>).detail;
    const [x0, y0] = startPoints.canvas;
    const [x1, y1] = currentPoints.canvas;
    if (Math.hypot(x1 - x0, y1 - y0) <= CLICK_SLOP_PX) cancelActiveManipulations(host as HTMLDivElement);
  };
  // The wheel zooms (ZoomTool's wheel binding); on a multi-frame image or a series' stack it
  // scrolls frames or slices instead, unless Ctrl is held. Heard in the capture phase, before
  // Cornerstone's own listener, so that boxes and the indicator follow each slice.
  const onWheel = (event: WheelEvent) => {
    const image = currentImage();
    if (!image || (image.frames <= 1 && !image.stack) || event.ctrlKey) return;
    event.preventDefault();
    event.stopImmediatePropagation();
    nextFrame(Math.sign(event.deltaY));
  };
  const onContextMenu = (event: Event) => event.preventDefault();

  host.addEventListener(Enums.Events.IMAGE_RENDERED, onImageRendered);
  eventTarget.addEventListener(ToolsEnums.Events.ANNOTATION_COMPLETED, onAnnotationCompleted);
  eventTarget.addEventListener(ToolsEnums.Events.ANNOTATION_MODIFIED, onAnnotationModified);
  host.addEventListener("pointerdown", onPointerDown, true);
  window.addEventListener("pointerup", onPointerUp, true);
  host.addEventListener(ToolsEnums.Events.MOUSE_UP, onToolsMouseUp);
  host.addEventListener(ToolsEnums.Events.MOUSE_CLICK, onToolsMouseUp);
  host.addEventListener("wheel", onWheel, { passive: false, capture: true });
  host.addEventListener("contextmenu", onContextMenu);
  const resizeObserver = new ResizeObserver(() => engine.resize(true, true));
  resizeObserver.observe(element);

  setTool(DEFAULT_TOOL);

  const handle: ViewerHandle = {
    async setImages(list) {
      images = list.map((image) => ({ ...image }));
      remember(images);
      strip.render(images);
      boxes.setBoxes([]);
      allBoxes = [];
      await heatmap.set(null);
      closePlanes();
      stackOf = null;
      current = null;
      if (images.length) await showImage(images[0].instanceId, 1);
      else {
        strip.markCurrent(null);
        boxes.sync(null, undefined);
        updateOverlay();
        updateStackInfo();
      }
    },
    showImage,
    showPlanes,
    planes: () => planes?.slices() ?? null,
    currentImage: (): ShownImage | null => {
      if (!current) return null;
      const stack = known.get(current.instanceId)?.stack;
      if (!stack) return { ...current };
      const slice = (sliceIndex.get(current.instanceId) ?? 0) + 1;
      return { ...current, seriesId: stack.seriesId, slice, slices: stack.slices.length };
    },
    nextFrame,
    setWindow,
    getWindow,
    applyPreset,
    invert() {
      viewport.setProperties({ invert: !viewport.getProperties().invert });
      viewport.render();
    },
    reset() {
      viewport.resetCamera();
      viewport.resetProperties();
      if (fileWindow) viewport.setProperties({ voiRange: { ...fileWindow }, invert: false });
      viewport.render();
    },
    zoomBy(factor) {
      if (!(factor > 0)) return;
      viewport.setZoom(viewport.getZoom() * factor);
      viewport.render();
    },
    setTool,
    setBoxes(list) {
      allBoxes = list.map((box) => ({ ...box }));
      boxes.setBoxes(list);
      const stack = currentImage()?.stack;
      if (planes && stack) planes.setBoxes(planeBoxes(stack));
      boxes.sync(current, viewport.getCurrentImageId());
      viewport.render();
    },
    selectBox(id) {
      boxes.select(id);
      viewport.render();
    },
    async setHeatmap(overlay: HeatmapOverlay | null) {
      await heatmap.set(overlay);
      heatmap.sync(current?.instanceId ?? null, size());
    },
    heatmap: () => heatmap.current(),
    onBoxDrawn: (cb) => void drawnListeners.push(cb),
    onBoxChanged: (cb) => void changedListeners.push(cb),
    onBoxClicked: (cb) => void clickedListeners.push(cb),
    onRendered: (cb) => void renderedListeners.push(cb),
    async prefetch(list) {
      remember(list);
      // The first frame of each image (a multi-frame file arrives whole with it, the rest
      // decode on demand), and the first slice of each series.
      await Promise.all(
        list.map((image) =>
          imageLoader.loadAndCacheImage(
            image.stack?.slices.length ? stackImageIds(image.stack)[0] : frameImageIds(image)[0],
          ),
        ),
      );
    },
    destroy() {
      closePlanes();
      toolsUtilities.stackPrefetch.disable(host as HTMLDivElement);
      resizeObserver.disconnect();
      host.removeEventListener(Enums.Events.IMAGE_RENDERED, onImageRendered);
      eventTarget.removeEventListener(ToolsEnums.Events.ANNOTATION_COMPLETED, onAnnotationCompleted);
      eventTarget.removeEventListener(ToolsEnums.Events.ANNOTATION_MODIFIED, onAnnotationModified);
      host.removeEventListener("pointerdown", onPointerDown, true);
      window.removeEventListener("pointerup", onPointerUp, true);
      host.removeEventListener(ToolsEnums.Events.MOUSE_UP, onToolsMouseUp);
      host.removeEventListener(ToolsEnums.Events.MOUSE_CLICK, onToolsMouseUp);
      boxes.clear();
      strip.clear();
      ToolGroupManager.destroyToolGroup(toolGroupId);
      engine.destroy();
      element.replaceChildren();
      element.classList.remove("ml-viewer");
    },
  };
  return handle;
}

function describe(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (error && typeof error === "object" && "error" in error) {
    const inner = (error as { error?: { status?: number; statusText?: string } }).error;
    if (inner?.status) return `HTTP ${inner.status} ${inner.statusText ?? ""}`.trim();
  }
  return String(error);
}
