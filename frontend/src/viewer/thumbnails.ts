/** The case's images as a strip of buttons with MedLoop's server-rendered thumbnails. */

import { apiUrls } from "../shared/urls";
import type { ViewerImage } from "./types";

export const thumbnailUrl = (instanceId: number): string => apiUrls.instanceThumbnail(instanceId);

export class ThumbnailStrip {
  private buttons = new Map<number, HTMLButtonElement>();

  constructor(
    private readonly container: HTMLElement | undefined,
    private readonly onPick: (instanceId: number) => void,
  ) {
    container?.classList.add("ml-thumbnails");
    container?.setAttribute("role", "listbox");
    container?.setAttribute("aria-label", "Images of this case");
  }

  render(images: ViewerImage[]): void {
    if (!this.container) return;
    this.container.replaceChildren();
    this.buttons.clear();
    images.forEach((image, index) => {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "ml-thumb";
      button.setAttribute("role", "option");
      button.setAttribute("aria-selected", "false");
      button.dataset.instanceId = String(image.instanceId);
      const name = image.label ?? `Image ${index + 1}`;
      const slices = image.stack?.slices ?? [];
      let frames = image.frames > 1 ? ` · ${image.frames} frames` : "";
      // A series is one thumbnail: its middle slice, and how many slices it holds.
      let shownId = image.instanceId;
      if (image.stack) {
        button.dataset.seriesId = String(image.stack.seriesId);
        frames = ` · ${slices.length} slices`;
        shownId = slices[Math.floor(slices.length / 2)]?.instanceId ?? image.instanceId;
        if (image.stack.problems.length) {
          button.classList.add("is-irregular");
          frames += " · irregular series";
        }
      }
      button.title = `${name}${frames}`;
      const img = document.createElement("img");
      img.src = thumbnailUrl(shownId);
      img.alt = `${name}${frames}`;
      img.loading = "lazy";
      img.decoding = "async";
      const caption = document.createElement("span");
      caption.textContent = image.stack ? `${name} (${slices.length})` : name;
      button.append(img, caption);
      button.addEventListener("click", () => this.onPick(image.instanceId));
      this.container!.append(button);
      this.buttons.set(image.instanceId, button);
    });
  }

  markCurrent(instanceId: number | null): void {
    for (const [id, button] of this.buttons) {
      const current = id === instanceId;
      button.setAttribute("aria-selected", String(current));
      button.classList.toggle("is-current", current);
    }
  }

  clear(): void {
    this.container?.replaceChildren();
    this.buttons.clear();
  }
}
