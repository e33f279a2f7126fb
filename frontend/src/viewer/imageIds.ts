/** Cornerstone image ids for MedLoop's Part 10 endpoint: "wadouri:" + the absolute URL, one id
 * per frame ("&frame=N", 1-based, as dicom-image-loader parses it) for multi-frame files. */

import type { ViewerImage, ViewerStack } from "./types";

export function fileImageId(url: string): string {
  return `wadouri:${new URL(url, window.location.href).href}`;
}

export function frameImageIds(image: ViewerImage): string[] {
  const base = fileImageId(image.url);
  const frames = Math.max(1, image.frames || 1);
  if (frames === 1) return [base];
  return Array.from({ length: frames }, (_, i) => `${base}&frame=${i + 1}`);
}

/** One image id per slice of a series' stack, in the stack's order. */
export function stackImageIds(stack: ViewerStack): string[] {
  return stack.slices.map((slice) => fileImageId(slice.url));
}
