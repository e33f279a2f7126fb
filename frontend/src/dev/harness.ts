/** A page that hosts the viewer alone, for the viewer's browser test and for trying it by hand:
 * /static/frontend/dist/src/dev/viewer-harness.html?instances=12,13x3 (13 has 3 frames).
 * Everything the viewer reports is kept in window.harness.events. */

import { getEnabledElements, getShouldUseCPURendering, type StackViewport } from "@cornerstonejs/core";

import { apiUrls } from "../shared/urls";
import { imageToWorld } from "../viewer/geometry";
import {
  createViewer,
  DEFAULT_PRESETS,
  type ViewerHandle,
  type ViewerImage,
  type ViewerTool,
} from "../viewer";

type Events = { drawn: unknown[]; changed: unknown[]; clicked: unknown[]; rendered: unknown[] };

declare global {
  interface Window {
    harness: {
      viewer?: ViewerHandle;
      events: Events;
      ready: Promise<ViewerHandle>;
      error?: string;
      imageToClient: (x: number, y: number) => [number, number] | null;
      renderer: () => "cpu" | "webgl";
    };
  }
}

function imagesFromQuery(): ViewerImage[] {
  const raw = new URLSearchParams(window.location.search).get("instances") ?? "";
  return raw
    .split(",")
    .filter(Boolean)
    .map((item) => {
      const [id, frames] = item.split("x").map(Number);
      return {
        instanceId: id,
        url: apiUrls.instanceFile(id),
        frames: frames || 1,
        rows: 0,
        columns: 0,
        label: `#${id}`,
      };
    });
}

function button(label: string, action: () => void): HTMLButtonElement {
  const element = document.createElement("button");
  element.type = "button";
  element.textContent = label;
  element.addEventListener("click", action);
  document.getElementById("toolbar")!.append(element);
  return element;
}

const events: Events = { drawn: [], changed: [], clicked: [], rendered: [] };
const log = document.getElementById("log")!;
function record(kind: keyof Events, value: unknown): void {
  events[kind].push(value);
  log.textContent = `${kind} ${JSON.stringify(value)}\n${log.textContent}`.slice(0, 4000);
}

async function start(): Promise<ViewerHandle> {
  const viewer = await createViewer(
    document.getElementById("viewer")!,
    document.getElementById("thumbnails")!,
  );
  window.harness.viewer = viewer;
  viewer.onBoxDrawn((box) => record("drawn", box));
  viewer.onBoxChanged((id, geometry) => record("changed", { id, ...geometry }));
  viewer.onBoxClicked((id) => {
    record("clicked", id);
    viewer.selectBox(id);
  });
  viewer.onRendered((info) => record("rendered", info));

  const tools: ViewerTool[] = ["windowLevel", "pan", "zoom", "rectangle"];
  const toolButtons = tools.map((tool) =>
    button(tool, () => {
      viewer.setTool(tool);
      toolButtons.forEach((b, i) => b.setAttribute("aria-pressed", String(tools[i] === tool)));
    }),
  );
  toolButtons[0].setAttribute("aria-pressed", "true");
  for (const preset of DEFAULT_PRESETS) button(preset.name, () => viewer.applyPreset(preset.name));
  button("Invert", () => viewer.invert());
  button("Zoom +", () => viewer.zoomBy(1.25));
  button("Reset", () => viewer.reset());

  const images = imagesFromQuery();
  if (images.length) await viewer.setImages(images);
  return viewer;
}

/** Where image pixel (x, y) (top-left corner origin) is on the page, for driving the mouse. */
function imageToClient(x: number, y: number): [number, number] | null {
  const viewport = getEnabledElements()[0]?.viewport as StackViewport | undefined;
  const world = viewport && imageToWorld(viewport, x, y);
  if (!viewport || !world) return null;
  const [cx, cy] = viewport.worldToCanvas(world);
  const rect = viewport.element.getBoundingClientRect();
  return [rect.left + cx, rect.top + cy];
}

window.harness = {
  events,
  ready: start(),
  imageToClient,
  renderer: () => (getShouldUseCPURendering() ? "cpu" : "webgl"),
};
window.harness.ready.catch((error: unknown) => {
  window.harness.error = String(error);
  log.textContent = `error ${String(error)}`;
});
