import type { WindowPreset } from "./types";

/** "Default" is the file's own window (Window Center/Width, or the pixel range without one);
 * the others are in Hounsfield units on CT, and relative to the file's window elsewhere (see
 * WindowPreset). Keys are the digits the workspace binds. */
export const DEFAULT_PRESETS: WindowPreset[] = [
  { name: "Default", center: Number.NaN, width: Number.NaN, key: "1" },
  // On radiographs: lung favours the dark fields, mediastinum and bone the dense parts.
  { name: "Lung", center: -600, width: 1500, key: "2", relative: { center: 0.35, width: 0.6 } },
  { name: "Mediastinum", center: 50, width: 350, key: "3", relative: { center: 0.65, width: 0.5 } },
  { name: "Bone", center: 400, width: 1800, key: "4", relative: { center: 0.8, width: 0.4 } },
];

export function findPreset(name: string, presets: WindowPreset[] = DEFAULT_PRESETS) {
  const wanted = name.trim().toLowerCase();
  return presets.find((preset) => preset.name.toLowerCase() === wanted);
}

export function isDefaultPreset(preset: WindowPreset): boolean {
  return !Number.isFinite(preset.center) || !Number.isFinite(preset.width);
}
