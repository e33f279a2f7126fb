/** The model's explanations in the workspace: a Grad-CAM heatmap per finding over the image the
 * model read (fetched from /api/cases/{id}/explanation/), one at a time, and the links from the
 * report draft's sentences back to the boxes and findings they came from. */

import type { ViewerHandle } from "../viewer";
import type { Api } from "../shared/api";
import { apiUrls, query } from "../shared/urls";
import type { ReportLink, Suggestion } from "./types";

export class Explanations {
  private shownFinding: string | null = null;
  private objectUrl: string | null = null;
  private request = 0;

  constructor(
    private readonly api: Api,
    private readonly viewer: ViewerHandle,
  ) {}

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
   * that raises the finding's score) or "hidden". Rejects with the server's error (ApiError). */
  async toggle(
    caseId: number,
    suggestion: Suggestion,
    finding: string,
  ): Promise<"shown" | "empty" | "hidden"> {
    if (this.shownFinding === finding) {
      await this.hide();
      return "hidden";
    }
    const request = ++this.request;
    const { blob, headers } = await this.api.blob(apiUrls.caseExplanation(caseId, query({ finding, version: suggestion.model_version })));
    if (request !== this.request) return "hidden"; // another toggle or a new case took over
    const instanceId = Number(headers.get("X-MedLoop-Instance"));
    const url = URL.createObjectURL(blob);
    const shown = this.viewer.currentImage();
    if (instanceId && shown?.instanceId !== instanceId) await this.viewer.showImage(instanceId, 1);
    await this.viewer.setHeatmap({
      instanceId: instanceId || (shown?.instanceId ?? 0),
      url,
      label: `Grad-CAM: ${finding} (model v${suggestion.model_version})`,
    });
    this.release();
    this.objectUrl = url;
    this.shownFinding = finding;
    return headers.get("X-MedLoop-Heatmap-Empty") === "true" ? "empty" : "shown";
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
  }
}
