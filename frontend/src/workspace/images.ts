/** The case's images in the viewer's terms: a radiograph per instance, and a CT or MR series
 * of single-frame slices as one stack in the server's order along the slice normal. */

import type { ViewerImage, ViewerStack } from "../viewer";
import type { Api } from "../shared/api";
import { apiUrls } from "../shared/urls";
import type { CaseDetail, Series } from "./types";

/** Cross-sectional modalities whose single-frame instances are slices of one volume. */
export const STACK_MODALITIES = new Set(["CT", "MR", "PT", "NM"]);

/** GET /api/cases/<case>/series/<series>/stack/ */
export type SeriesStack = {
  series_id: number;
  modality: string;
  instance_ids: number[];
  sorted_by: "position" | "instance_number";
  slice_spacing: number | null;
  pixel_spacing: number[] | null;
  regular: boolean;
  problems: string[];
};

/** A series shown as one stack: a cross-sectional modality, two or more instances, each a
 * single frame. */
export function isStackSeries(series: Series): boolean {
  const instances = series.instances ?? [];
  return (
    STACK_MODALITIES.has((series.modality ?? "").toUpperCase()) &&
    instances.length > 1 &&
    instances.every((i) => (i.number_of_frames || 1) === 1)
  );
}

function labelOf(series: Series, fallback: string): string {
  return [series.modality, series.description].filter(Boolean).join(" ") || fallback;
}

function stackImage(series: Series, stack: SeriesStack): ViewerImage | null {
  const byId = new Map((series.instances ?? []).map((i) => [i.id, i]));
  const slices = stack.instance_ids
    .map((id) => byId.get(id))
    .filter((i) => i !== undefined)
    .map((i) => ({ instanceId: i.id, url: apiUrls.instanceFile(i.id), rows: i.rows, columns: i.columns }));
  if (!slices.length) return null;
  const viewerStack: ViewerStack = {
    seriesId: series.id,
    slices,
    sliceSpacing: stack.regular ? stack.slice_spacing : null,
    problems: stack.problems,
  };
  return {
    instanceId: slices[0].instanceId,
    url: slices[0].url,
    frames: 1,
    rows: slices[0].rows,
    columns: slices[0].columns,
    label: labelOf(series, `Series ${series.id}`),
    modality: series.modality,
    stack: viewerStack,
  };
}

/** The viewer's images of ``c``; ``stacks`` (by series id) turns those series into stacks. */
export function imagesOf(c: CaseDetail, stacks: Map<number, SeriesStack> = new Map()): ViewerImage[] {
  const images: ViewerImage[] = [];
  for (const series of c.series ?? []) {
    const stack = stacks.get(series.id);
    const asStack = stack ? stackImage(series, stack) : null;
    if (asStack) {
      images.push(asStack);
      continue;
    }
    for (const instance of series.instances ?? []) {
      images.push({
        instanceId: instance.id,
        url: apiUrls.instanceFile(instance.id),
        frames: instance.number_of_frames || 1,
        rows: instance.rows,
        columns: instance.columns,
        label: labelOf(series, `Image ${instance.id}`),
        modality: series.modality,
      });
    }
  }
  return images;
}

/** ``imagesOf`` with the stack of each CT/MR series asked of the server (one request per
 * series). A series whose stack cannot be read is shown slice by slice, as before. */
export async function loadImages(api: Api, c: CaseDetail): Promise<ViewerImage[]> {
  const stacks = new Map<number, SeriesStack>();
  await Promise.all(
    (c.series ?? []).filter(isStackSeries).map(async (series) => {
      try {
        const response = await api.get<SeriesStack>(apiUrls.seriesStack(c.id, series.id));
        stacks.set(series.id, response.data);
      } catch {
        // Shown as separate images: still readable, only not scrollable as one stack.
      }
    }),
  );
  return imagesOf(c, stacks);
}
