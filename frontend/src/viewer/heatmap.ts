/** A colour overlay over one image of the stack (a Grad-CAM heatmap: an RGBA PNG the size of the
 * image, transparent where there is no heat), kept on the image through zoom and pan. It is an
 * <img> placed over the canvas from the image's corners in canvas space, so it costs nothing to
 * render and never touches the image's pixels or its window. */

import type { StackViewport } from "@cornerstonejs/core";

import { imageToWorld } from "./geometry";
import type { HeatmapOverlay } from "./types";

export class HeatmapLayer {
  private readonly img: HTMLImageElement;
  private overlay: HeatmapOverlay | null = null;

  constructor(
    parent: HTMLElement,
    private readonly viewport: StackViewport,
  ) {
    this.img = document.createElement("img");
    this.img.className = "ml-heatmap";
    this.img.alt = "";
    this.img.hidden = true;
    this.img.draggable = false;
    // Between the image's canvas and Cornerstone's SVG layer, so boxes stay above the heat.
    const canvas = parent.querySelector("canvas");
    if (canvas) canvas.after(this.img);
    else parent.append(this.img);
  }

  current(): HeatmapOverlay | null {
    return this.overlay;
  }

  /** Shows ``overlay`` (resolves once its picture has loaded), or hides it with null. */
  async set(overlay: HeatmapOverlay | null): Promise<void> {
    this.overlay = overlay;
    if (!overlay) {
      this.img.hidden = true;
      this.img.removeAttribute("src");
      delete this.img.dataset.instance;
      return;
    }
    this.img.dataset.instance = String(overlay.instanceId);
    this.img.title = overlay.label ?? "";
    this.img.src = overlay.url;
    await this.img.decode();
  }

  /** Places the overlay over the displayed image, or hides it when another image is shown. */
  sync(shownInstanceId: number | null, size: { columns: number; rows: number }): void {
    const overlay = this.overlay;
    if (!overlay || overlay.instanceId !== shownInstanceId || !size.columns || !size.rows) {
      this.img.hidden = true;
      return;
    }
    const topLeft = imageToWorld(this.viewport, 0, 0);
    const bottomRight = imageToWorld(this.viewport, size.columns, size.rows);
    if (!topLeft || !bottomRight) {
      this.img.hidden = true;
      return;
    }
    const [x0, y0] = this.viewport.worldToCanvas(topLeft);
    const [x1, y1] = this.viewport.worldToCanvas(bottomRight);
    const style = this.img.style;
    style.left = `${Math.min(x0, x1)}px`;
    style.top = `${Math.min(y0, y1)}px`;
    style.width = `${Math.abs(x1 - x0)}px`;
    style.height = `${Math.abs(y1 - y0)}px`;
    // A horizontally flipped camera would mirror the corners; mirror the picture with them.
    style.transform = `scale(${x1 < x0 ? -1 : 1}, ${y1 < y0 ? -1 : 1})`;
    this.img.hidden = false;
  }
}
