/** Measures what the annotator waits for: submit -> next case's first image rendered, and the
 * cold first render of the page. Exposed on window.medloopTimings for tests and benchmarks. */

export type TimingRecord = {
  coldFirstRenderMs: number | null;
  submitToRenderMs: number[];
  renders: { caseId: number; viewerMs: number; at: number }[];
};

declare global {
  interface Window {
    medloopTimings?: TimingRecord;
  }
}

export class Timings {
  private expected: { caseId: number; t0: number } | null = null;
  readonly record: TimingRecord = { coldFirstRenderMs: null, submitToRenderMs: [], renders: [] };

  constructor() {
    window.medloopTimings = this.record;
  }

  /** The next render of `caseId` ends a measurement started at `t0` (performance.now()). */
  expect(caseId: number, t0: number): void {
    this.expected = { caseId, t0 };
  }

  /** Called on every render; returns the submit->render time when this render ends one. */
  rendered(caseId: number, viewerMs: number): number | null {
    const now = performance.now();
    this.record.renders.push({ caseId, viewerMs, at: now });
    if (this.record.renders.length > 200) this.record.renders.shift();
    if (this.record.coldFirstRenderMs === null) this.record.coldFirstRenderMs = now;
    if (this.expected && this.expected.caseId === caseId) {
      const ms = now - this.expected.t0;
      this.expected = null;
      this.record.submitToRenderMs.push(ms);
      return ms;
    }
    return null;
  }
}
