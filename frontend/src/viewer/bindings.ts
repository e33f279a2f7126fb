/** Which Cornerstone tool each viewer tool is, and the mouse bindings that never change;
 * declared as data (as OHIF declares its tool groups). The left button is the one that moves. */

import {
  Enums as ToolsEnums,
  PanTool,
  RectangleROITool,
  WindowLevelTool,
  ZoomTool,
} from "@cornerstonejs/tools";

import type { ViewerTool } from "./types";

const { KeyboardBindings, MouseBindings } = ToolsEnums;

export const BOX_TOOL = RectangleROITool.toolName;

export const PRIMARY_TOOLS: Record<ViewerTool, string> = {
  windowLevel: WindowLevelTool.toolName,
  pan: PanTool.toolName,
  zoom: ZoomTool.toolName,
  rectangle: BOX_TOOL,
};

/** Middle drag pans, right drag zooms and the mouse wheel zooms (about the pointer, as every
 * DICOM viewer does) whatever the left button does. On a multi-frame image the wheel scrolls
 * frames instead and Ctrl+wheel zooms (viewer.ts). */
export const FIXED_BINDINGS: { tool: string; mouseButton: number; modifierKey?: number }[] = [
  { tool: PanTool.toolName, mouseButton: MouseBindings.Auxiliary },
  { tool: ZoomTool.toolName, mouseButton: MouseBindings.Secondary },
  { tool: ZoomTool.toolName, mouseButton: MouseBindings.Wheel },
  { tool: ZoomTool.toolName, mouseButton: MouseBindings.Wheel, modifierKey: KeyboardBindings.Ctrl },
];

export const PRIMARY_BUTTON = MouseBindings.Primary;

export const DEFAULT_TOOL: ViewerTool = "windowLevel";
