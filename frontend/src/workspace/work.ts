/** The annotator's working copy of one case: boxes, findings, report, and the suggestion boxes
 * still waiting for a decision. Pure state; panels render it and the saver persists it. */

import type {
  Annotation,
  AnnotationContent,
  BoxOrigin,
  FindingState,
  LabelSchema,
  Suggestion,
  SuggestionBox,
} from "./types";

export type WorkBox = {
  id: string; // "b<n>" in the viewer
  instanceId: number;
  frame: number;
  x: number;
  y: number;
  width: number;
  height: number;
  finding: string;
  origin: BoxOrigin;
  suggestionBoxId: string;
  /** A 3D box: the slices it covers, 1-based in its series' position order. */
  slices?: [number, number];
};

export type Geometry = { x: number; y: number; width: number; height: number };

export const SUGGESTION_PREFIX = "s:";

let boxCounter = 0;
function newBoxId(): string {
  boxCounter += 1;
  return `b${boxCounter}`;
}

export class WorkState {
  boxes: WorkBox[] = [];
  findings: Record<string, FindingState> = {};
  report: Record<string, string> = {};
  /** Findings filled in from the model that the annotator has not touched. */
  prefilledFindings = new Set<string>();
  suggestion: Suggestion | null = null;
  rejected = new Set<string>();
  selectedId: string | null = null;

  constructor(readonly schema: LabelSchema) {}

  /** Load the server's working copy; prefill what it lacks from the newest suggestion. */
  load(annotation: Annotation, suggestion: Suggestion | null): void {
    this.suggestion = suggestion;
    this.boxes = annotation.boxes.map((b) => ({
      id: newBoxId(),
      instanceId: b.instance_id,
      frame: b.frame,
      x: b.x,
      y: b.y,
      width: b.width,
      height: b.height,
      finding: b.finding,
      origin: b.origin,
      suggestionBoxId: b.suggestion_box_id ?? "",
      ...(b.slice_first && b.slice_last ? { slices: [b.slice_first, b.slice_last] as [number, number] } : {}),
    }));
    this.findings = { ...annotation.findings };
    this.report = { ...annotation.report };
    // Rejections are part of the annotation on the server, so they follow the annotator.
    this.rejected = new Set(annotation.rejected_suggestion_boxes ?? []);
    this.prefilledFindings.clear();
    // Only what the server says to prefill: it knows the version's calibrated thresholds, and
    // a finding the model is still learning is left for the annotator.
    const prefill = suggestion?.findings_prefilled ?? {};
    for (const finding of this.schema.findings) {
      const state = prefill[finding.key];
      if (this.findings[finding.key] === undefined && state) {
        this.findings[finding.key] = state;
        this.prefilledFindings.add(finding.key);
      }
    }
    for (const section of this.schema.report_sections) {
      const draft = suggestion?.report_draft?.[section.key];
      if (!this.report[section.key] && draft) this.report[section.key] = draft;
    }
    if (this.selectedId && !this.find(this.selectedId)) this.selectedId = null;
  }

  /** Suggestion boxes not yet accepted, edited or rejected. */
  pendingSuggestions(): SuggestionBox[] {
    const used = new Set(this.boxes.map((b) => b.suggestionBoxId).filter(Boolean));
    return (this.suggestion?.boxes ?? []).filter((s) => !used.has(s.id) && !this.rejected.has(s.id));
  }

  suggestionById(id: string): SuggestionBox | undefined {
    return this.suggestion?.boxes.find((s) => s.id === id);
  }

  find(viewerId: string): WorkBox | SuggestionBox | undefined {
    if (viewerId.startsWith(SUGGESTION_PREFIX)) {
      const id = viewerId.slice(SUGGESTION_PREFIX.length);
      return this.pendingSuggestions().find((s) => s.id === id);
    }
    return this.boxes.find((b) => b.id === viewerId);
  }

  /** All selectable items in list order: the annotator's boxes, then pending suggestions. */
  orderedIds(): string[] {
    return [
      ...this.boxes.map((b) => b.id),
      ...this.pendingSuggestions().map((s) => SUGGESTION_PREFIX + s.id),
    ];
  }

  addDrawn(box: { instanceId: number; frame: number } & Geometry, finding: string): WorkBox {
    const work: WorkBox = { ...box, id: newBoxId(), finding, origin: "drawn", suggestionBoxId: "" };
    this.boxes.push(work);
    this.selectedId = work.id;
    return work;
  }

  /** Accept a suggestion unchanged, or as edited with new geometry. */
  acceptSuggestion(suggestionId: string, geometry?: Geometry): WorkBox | null {
    const s = this.suggestionById(suggestionId);
    if (!s) return null;
    this.rejected.delete(s.id);
    const work: WorkBox = {
      id: newBoxId(),
      instanceId: s.instance_id,
      frame: s.frame,
      x: geometry?.x ?? s.x,
      y: geometry?.y ?? s.y,
      width: geometry?.width ?? s.width,
      height: geometry?.height ?? s.height,
      finding: s.finding,
      origin: geometry ? "suggested_edited" : "suggested_accepted",
      suggestionBoxId: s.id,
      // A 3D suggestion stays 3D: the same slices of its series.
      ...(s.slices ? { slices: [s.slices[0], s.slices[1]] as [number, number] } : {}),
    };
    this.boxes.push(work);
    this.selectedId = work.id;
    return work;
  }

  rejectSuggestion(suggestionId: string): void {
    this.rejected.add(suggestionId);
    if (this.selectedId === SUGGESTION_PREFIX + suggestionId) this.selectedId = null;
  }

  moveBox(id: string, geometry: Geometry): void {
    const box = this.boxes.find((b) => b.id === id);
    if (!box) return;
    Object.assign(box, geometry);
    if (box.origin === "suggested_accepted") box.origin = "suggested_edited";
  }

  /** Extends a box drawn on slice ``drawnOn`` of a series over its range up to ``slice``
   * (both 1-based): the range always holds the slice it was drawn on. */
  extendBox(id: string, drawnOn: number, slice: number): WorkBox | null {
    const box = this.boxes.find((b) => b.id === id);
    if (!box) return null;
    const [first, last] = box.slices ?? [drawnOn, drawnOn];
    box.slices = [Math.min(first, slice), Math.max(last, slice)];
    if (box.origin === "suggested_accepted") box.origin = "suggested_edited";
    return box;
  }

  setFinding(id: string, finding: string): void {
    const box = this.boxes.find((b) => b.id === id);
    if (!box || box.finding === finding) return;
    box.finding = finding;
    if (box.origin === "suggested_accepted") box.origin = "suggested_edited";
  }

  deleteBox(id: string): void {
    const box = this.boxes.find((b) => b.id === id);
    this.boxes = this.boxes.filter((b) => b.id !== id);
    // A deleted accepted suggestion counts as rejected, so it does not come back as pending.
    if (box?.suggestionBoxId) this.rejectSuggestion(box.suggestionBoxId);
    if (this.selectedId === id) this.selectedId = null;
  }

  content(): AnnotationContent {
    return {
      findings: { ...this.findings },
      report: { ...this.report },
      boxes: this.boxes.map((b) => ({
        instance_id: b.instanceId,
        frame: b.frame,
        x: round(b.x),
        y: round(b.y),
        width: round(b.width),
        height: round(b.height),
        finding: b.finding,
        origin: b.origin,
        suggestion_box_id: b.suggestionBoxId,
        ...(b.slices ? { slices: [...b.slices] as [number, number] } : {}),
      })),
      rejected_suggestion_boxes: [...this.rejected].sort(),
    };
  }
}

function round(v: number): number {
  return Math.round(v * 100) / 100;
}
