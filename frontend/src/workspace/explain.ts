/** The model's explanations in the workspace: a Grad-CAM heatmap per finding over the image the
 * model read (fetched from /api/cases/{id}/explanation/), one at a time, and the links from the
 * report draft's sentences back to the boxes and findings they came from.
 *
 * A model that reads volumes (the CT detector) explains the case's series slice by slice: the
 * heatmap follows the slice on display (SliceHeatmaps fetches each slice's overlay as the
 * annotator scrolls), and the toggle stays on the slice shown when it is of that series, else
 * moves to the hottest slice. Its overlays are drawn by a background task: until they are, the
 * server answers 202 and the toggle waits (explanation_wait.ts), saying so through
 * ``onWaiting``. */

import type { ViewerHandle } from "../viewer";
import type { Api } from "../shared/api";
import { apiUrls, query } from "../shared/urls";
import { whenComputed } from "./explanation_wait";
import { SliceHeatmaps, type SliceOverlay } from "./slice_heatmaps";
import type { ReportLink, Suggestion } from "./types";

type VolumeHeatmap = { seriesId: number; slices: number; label: string; overlays: SliceHeatmaps };

export class Explanations {
  private shownFinding: string | null = null;
  private objectUrl: string | null = null;
  private volume: VolumeHeatmap | null = null;
  private request = 0;

  constructor(
    private readonly api: Api,
    private readonly viewer: ViewerHandle,
  ) {
    viewer.onRendered(() => void this.follow());
  }

  /** The finding whose heatmap is over the image, if any. */
  get shown(): string | null {
    return this.shownFinding;
  }

  /** The draft's sentence links stored with the suggestion (none for older suggestions). */
  static links(suggestion: Suggestion | null): ReportLink[] {
    const links = suggestion?.uncertainty?.report_links;
    return Array.isArray(links) ? (links as ReportLink[]) : [];
  }

  /** Shows ``finding``'s heatmap for the case (switching to the image it is over), or hides it
   * if it is the one shown; resolves to "shown", "empty" (shown, but the model finds no region
   * that raises the finding's score) or "hidden". While the server is still computing it,
   * ``onWaiting`` is told once what to show. Rejects with the server's error (ApiError), or
   * when the explanation takes too long. */
  async toggle(
    caseId: number,
    suggestion: Suggestion,
    finding: string,
    onWaiting?: (message: string) => void,
  ): Promise<"shown" | "empty" | "hidden"> {
    if (this.shownFinding === finding) {
      await this.hide();
      return "hidden";
    }
    const request = ++this.request;
    const url = (slice?: number) =>
      apiUrls.caseExplanation(caseId, query({ finding, version: suggestion.model_version, slice }));
    // Another toggle or a new case takes over: stop waiting.
    const wanted = () => request === this.request;
    const answer = await whenComputed(() => this.api.blob(url()), { onWaiting, wanted });
    if (!answer || !wanted()) return "hidden";
    const { blob, headers } = answer;
    const label = `Grad-CAM: ${finding} (model v${suggestion.model_version})`;
    const empty = headers.get("X-MedLoop-Heatmap-Empty") === "true" ? "empty" : "shown";
    if (headers.get("X-MedLoop-Series")) {
      await this.showVolume(request, headers, blob, label, async (slice) => {
        // Drawn with the first answer; asked again only if the series changed since.
        const one = await whenComputed(() => this.api.blob(url(slice)), { wanted });
        if (!one) throw new Error("the heatmap was hidden");
        return overlayOf(one.headers, URL.createObjectURL(one.blob));
      });
      if (request !== this.request) return "hidden";
      this.shownFinding = finding;
      return empty;
    }
    const instanceId = Number(headers.get("X-MedLoop-Instance"));
    const picture = URL.createObjectURL(blob);
    const shown = this.viewer.currentImage();
    if (instanceId && shown?.instanceId !== instanceId) await this.viewer.showImage(instanceId, 1);
    await this.viewer.setHeatmap({ instanceId: instanceId || (shown?.instanceId ?? 0), url: picture, label });
    this.release();
    this.objectUrl = picture;
    this.shownFinding = finding;
    return empty;
  }

  /** The first answer of a volume's explanation (the hottest slice): kept, and the heatmap of
   * the slice on display when it is of the explained series, else the viewer moves to the
   * hottest slice. */
  private async showVolume(
    request: number,
    headers: Headers,
    blob: Blob,
    label: string,
    fetchSlice: (slice: number) => Promise<SliceOverlay>,
  ): Promise<void> {
    const overlays = new SliceHeatmaps(fetchSlice, (url) => URL.revokeObjectURL(url));
    const hottest = overlayOf(headers, URL.createObjectURL(blob));
    overlays.seed(hottest);
    this.release();
    const volume = {
      seriesId: Number(headers.get("X-MedLoop-Series")),
      slices: Number(headers.get("X-MedLoop-Slices")),
      label,
      overlays,
    };
    this.volume = volume;
    const shown = this.viewer.currentImage();
    if (shown?.seriesId !== volume.seriesId) await this.viewer.showImage(hottest.instanceId, 1);
    if (request !== this.request) return;
    await this.follow();
  }

  /** Puts the overlay of the slice on display over it (after each render: scrolling). */
  private async follow(): Promise<void> {
    const volume = this.volume;
    const shown = this.viewer.currentImage();
    if (!volume || !shown?.slice || shown.seriesId !== volume.seriesId) return;
    let overlay: SliceOverlay | null;
    try {
      overlay = await volume.overlays.want(shown.slice - 1);
    } catch {
      return; // this slice stays without heat; the next scroll asks again
    }
    if (!overlay || volume !== this.volume) return;
    await this.viewer.setHeatmap({ instanceId: overlay.instanceId, url: overlay.url, label: volume.label });
  }

  async hide(): Promise<void> {
    this.request++;
    this.shownFinding = null;
    await this.viewer.setHeatmap(null);
    this.release();
  }

  /** Forget the heatmap without touching the viewer (it clears its own when images change). */
  reset(): void {
    this.request++;
    this.shownFinding = null;
    this.release();
  }

  private release(): void {
    if (this.objectUrl) URL.revokeObjectURL(this.objectUrl);
    this.objectUrl = null;
    this.volume?.overlays.dispose();
    this.volume = null;
  }
}

/** A slice's overlay from an explanation answer's headers. */
function overlayOf(headers: Headers, url: string): SliceOverlay {
  return {
    slice: Number(headers.get("X-MedLoop-Slice")),
    instanceId: Number(headers.get("X-MedLoop-Instance")),
    url,
  };
}
