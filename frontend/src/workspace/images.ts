/** The case's images in the viewer's terms. */

import type { ViewerImage } from "../viewer";
import { apiUrls } from "../shared/urls";
import type { CaseDetail } from "./types";

export function imagesOf(c: CaseDetail): ViewerImage[] {
  const images: ViewerImage[] = [];
  for (const series of c.series ?? []) {
    for (const instance of series.instances ?? []) {
      images.push({
        instanceId: instance.id,
        url: apiUrls.instanceFile(instance.id),
        frames: instance.number_of_frames || 1,
        rows: instance.rows,
        columns: instance.columns,
        label: [series.modality, series.description].filter(Boolean).join(" ") || `Image ${instance.id}`,
      });
    }
  }
  return images;
}
