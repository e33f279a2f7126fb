/** One-time initialisation of Cornerstone3D (rendering, tools, DICOM loader) for the page. */

import { init as initCore } from "@cornerstonejs/core";
import dicomImageLoader from "@cornerstonejs/dicom-image-loader";
import {
  addTool,
  CrosshairsTool,
  init as initTools,
  PanTool,
  RectangleROITool,
  WindowLevelTool,
  ZoomTool,
} from "@cornerstonejs/tools";

let ready: Promise<void> | null = null;

export function ensureCornerstone(): Promise<void> {
  ready ??= Promise.resolve().then(() => {
    // Falls back to CPU rendering by itself where WebGL is missing (headless, old GPUs).
    initCore();
    const cores = navigator.hardwareConcurrency || 2;
    dicomImageLoader.init({
      maxWebWorkers: Math.max(1, Math.min(4, Math.floor(cores / 2))),
    });
    initTools();
    for (const tool of [WindowLevelTool, PanTool, ZoomTool, RectangleROITool, CrosshairsTool]) {
      addTool(tool);
    }
  });
  return ready;
}
