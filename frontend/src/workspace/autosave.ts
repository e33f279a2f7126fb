/** Debounced autosave of the working copy with optimistic concurrency (ETag / If-Match).
 * A 412 stops autosaving until the annotator reloads or explicitly overwrites: never a silent
 * overwrite. One save is in flight at a time; changes made meanwhile are saved after it. */

import { Api, ApiError } from "../shared/api";
import { apiUrls } from "../shared/urls";
import type { Annotation, AnnotationContent } from "./types";

export type SaverHooks = {
  onState(state: "saved" | "dirty" | "saving" | "stale" | "error", detail?: string): void;
  onSaved(annotation: Annotation): void;
  onStale(error: ApiError): void;
  onError(error: ApiError): void;
};

export const AUTOSAVE_DELAY_MS = 1000;

export class DraftSaver {
  private timer: number | null = null;
  private inFlight: Promise<void> | null = null;
  private dirty = false;
  stale = false;

  constructor(
    private readonly api: Api,
    readonly caseId: number,
    public etag: string,
    private readonly content: () => AnnotationContent,
    private readonly hooks: SaverHooks,
  ) {}

  get hasUnsaved(): boolean {
    return this.dirty;
  }

  changed(): void {
    this.dirty = true;
    if (this.stale) {
      this.hooks.onState("stale");
      return;
    }
    this.hooks.onState("dirty");
    this.cancelTimer();
    this.timer = window.setTimeout(() => void this.flush(), AUTOSAVE_DELAY_MS);
  }

  /** Save now if anything is unsaved; resolves when the working copy is on the server. */
  async flush(keepalive = false): Promise<void> {
    this.cancelTimer();
    while (this.inFlight) await this.inFlight;
    if (!this.dirty || this.stale) return;
    this.inFlight = this.save(keepalive).finally(() => {
      this.inFlight = null;
    });
    await this.inFlight;
  }

  /** Wait for a running save, then stop the timer (before submit). */
  async settle(): Promise<void> {
    this.cancelTimer();
    while (this.inFlight) await this.inFlight;
  }

  /** Overwrite the server's version on the annotator's explicit request (after Compare). */
  async overwrite(serverEtag: string): Promise<void> {
    this.etag = serverEtag;
    this.stale = false;
    this.dirty = true;
    await this.flush();
  }

  /** Adopt a server version (after Reload). */
  reset(etag: string): void {
    this.cancelTimer();
    this.etag = etag;
    this.stale = false;
    this.dirty = false;
    this.hooks.onState("saved");
  }

  dispose(): void {
    this.cancelTimer();
    this.stale = true; // nothing more goes out for this case
  }

  private async save(keepalive: boolean): Promise<void> {
    this.dirty = false;
    this.hooks.onState("saving");
    try {
      const response = await this.api.put<Annotation>(
        apiUrls.caseAnnotation(this.caseId),
        this.content(),
        this.etag,
        keepalive,
      );
      this.etag = response.etag ?? response.data.etag;
      this.hooks.onSaved(response.data);
      this.hooks.onState(this.dirty ? "dirty" : "saved");
      if (this.dirty) this.changed();
    } catch (err) {
      this.dirty = true;
      const error = err instanceof ApiError ? err : new ApiError(0, "error", String(err), null);
      if (error.status === 412) {
        this.stale = true;
        this.hooks.onState("stale");
        this.hooks.onStale(error);
      } else {
        this.hooks.onState("error", error.message);
        this.hooks.onError(error);
      }
    }
  }

  private cancelTimer(): void {
    if (this.timer !== null) {
      window.clearTimeout(this.timer);
      this.timer = null;
    }
  }
}
