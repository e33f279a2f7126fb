/** A CT explanation's overlays, one per slice (GET /api/cases/{id}/explanation/?slice=k, k 0-based
 * in the stack's order), fetched as the annotator scrolls: each slice once (kept until the
 * heatmap is hidden), one request at a time, and while one is in flight only the slice asked for
 * last is fetched next, so a fast scroll asks for the slice it stops on, not every one it
 * passes. No DOM, no viewer: the workspace places what it resolves to. */

/** One slice's overlay: the instance it lies over (the server's word), its picture's URL. */
export type SliceOverlay = { slice: number; instanceId: number; url: string };

export class SliceHeatmaps {
  private readonly cache = new Map<number, SliceOverlay>();
  private inFlight: Promise<void> | null = null;
  private latest = 0;
  private disposed = false;

  /** ``fetchSlice`` loads one slice's overlay (an object URL the caller made); ``release``
   * frees such a URL. */
  constructor(
    private readonly fetchSlice: (slice: number) => Promise<SliceOverlay>,
    private readonly release: (url: string) => void,
  ) {}

  /** Keeps an overlay already fetched (the first answer, the hottest slice). */
  seed(overlay: SliceOverlay): void {
    if (this.disposed) this.release(overlay.url);
    else this.cache.set(overlay.slice, overlay);
  }

  /** Slice ``slice``'s overlay, or null when another slice was asked for since (or the
   * overlays were disposed). Rejects with the fetch's error. */
  async want(slice: number): Promise<SliceOverlay | null> {
    const token = ++this.latest;
    for (;;) {
      if (this.disposed) return null;
      const cached = this.cache.get(slice);
      if (cached) return token === this.latest ? cached : null;
      if (this.inFlight) {
        await this.inFlight.catch(() => undefined);
        if (token !== this.latest) return null;
        continue;
      }
      const loading = this.load(slice);
      this.inFlight = loading;
      try {
        await loading;
      } finally {
        if (this.inFlight === loading) this.inFlight = null;
      }
    }
  }

  /** How many slices' overlays are kept. */
  get size(): number {
    return this.cache.size;
  }

  /** Frees every overlay kept, and any still arriving. */
  dispose(): void {
    this.disposed = true;
    for (const overlay of this.cache.values()) this.release(overlay.url);
    this.cache.clear();
  }

  private async load(slice: number): Promise<void> {
    const overlay = await this.fetchSlice(slice);
    this.seed(overlay);
  }
}
