/** MedLoop's DICOM viewer on Cornerstone3D: the contract the workspace relies on. */

export type {
  BoxGeometry,
  DrawnBox,
  HeatmapOverlay,
  RenderedInfo,
  ShownImage,
  ViewerBox,
  ViewerHandle,
  ViewerImage,
  ViewerSlice,
  ViewerStack,
  ViewerTool,
  WindowPreset,
} from "./types";
export { DEFAULT_PRESETS, findPreset } from "./presets";
export { createViewer } from "./viewer";
export { thumbnailUrl } from "./thumbnails";
