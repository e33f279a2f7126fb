/** Pure logic of the adjudication page: pair the two readers' boxes the way the server's agreement
 * does (same finding, same image, IoU >= 0.5, one-to-one, best pairs first; 3D boxes of a CT
 * or MR series by 3D IoU within their series), and propose a starting final label the reviewer
 * then changes. No DOM: tested by __tests__/merge.test.ts. */

import type { StoredBox } from "../workspace/types";

/** A read's box as the API serves it (the stored box, with its id). */
export type ReadBox = Pick<
  StoredBox,
  "instance_id" | "frame" | "x" | "y" | "width" | "height" | "finding" | "slice_first" | "slice_last" | "patient_mm"
> & {
  id: number;
  /** A 3D box's series (null or absent for a 2D box). */
  series_id?: number | null;
};

export type Read = {
  id: number;
  annotator: string;
  findings: Record<string, string>;
  report: Record<string, string>;
  boxes: ReadBox[];
};

/** One row of the box table: a pair both readers drew, or a box only one of them drew. */
export type BoxRow = {
  key: string;
  finding: string;
  a: ReadBox | null;
  b: ReadBox | null;
  iou: number | null;
};

/** A box of the final label as the resolve API takes it (a 3D box with its ``slices``). */
export type FinalBox = Pick<ReadBox, "instance_id" | "frame" | "x" | "y" | "width" | "height" | "finding"> & {
  slices?: [number, number];
};

export const IOU_THRESHOLD = 0.5;

/** A 3D box's slices [first, last] (1-based), or null for a 2D box. */
export function slicesOf(box: ReadBox): [number, number] | null {
  return box.series_id != null && box.slice_first != null && box.slice_last != null
    ? [box.slice_first, box.slice_last]
    : null;
}

function overlap(a0: number, a1: number, b0: number, b1: number): number {
  return Math.max(0, Math.min(a1, b1) - Math.max(a0, b0));
}

/** IoU of two boxes; of two 3D boxes, in voxels (their slices as depth), as the server's. */
export function iou(p: ReadBox, q: ReadBox): number {
  const w = overlap(p.x, p.x + p.width, q.x, q.x + q.width);
  const h = overlap(p.y, p.y + p.height, q.y, q.y + q.height);
  const sp = slicesOf(p);
  const sq = slicesOf(q);
  const depth = (s: [number, number] | null) => (s ? s[1] - s[0] + 1 : 1);
  const d = sp && sq ? overlap(sp[0] - 1, sp[1], sq[0] - 1, sq[1]) : 1;
  const inter = w * h * d;
  if (inter <= 0) return 0;
  return inter / (p.width * p.height * depth(sp) + q.width * q.height * depth(sq) - inter);
}

/** Boxes that can pair: the same finding, and the same image and frame (2D) or the same
 * series (3D); a 2D and a 3D box never pair. */
function comparable(p: ReadBox, q: ReadBox): boolean {
  if (p.finding !== q.finding) return false;
  const sp = slicesOf(p);
  const sq = slicesOf(q);
  if (sp || sq) return Boolean(sp && sq) && p.series_id === q.series_id;
  return p.instance_id === q.instance_id && p.frame === q.frame;
}

/** Pairs of A's and B's boxes (greedy on IoU, which equals the optimal matching whenever no
 * box overlaps two others above the threshold), then the unpaired boxes of each reader. */
export function pairBoxes(a: ReadBox[], b: ReadBox[]): BoxRow[] {
  const candidates: { i: number; j: number; v: number }[] = [];
  a.forEach((p, i) =>
    b.forEach((q, j) => {
      const v = comparable(p, q) ? iou(p, q) : 0;
      if (v >= IOU_THRESHOLD - 1e-9) candidates.push({ i, j, v });
    }),
  );
  candidates.sort((m, n) => n.v - m.v || m.i - n.i || m.j - n.j);
  const usedA = new Set<number>();
  const usedB = new Set<number>();
  const rows: BoxRow[] = [];
  for (const { i, j, v } of candidates) {
    if (usedA.has(i) || usedB.has(j)) continue;
    usedA.add(i);
    usedB.add(j);
    rows.push({ key: `pair-${a[i].id}-${b[j].id}`, finding: a[i].finding, a: a[i], b: b[j], iou: v });
  }
  a.forEach((p, i) => {
    if (!usedA.has(i)) rows.push({ key: `a-${p.id}`, finding: p.finding, a: p, b: null, iou: null });
  });
  b.forEach((q, j) => {
    if (!usedB.has(j)) rows.push({ key: `b-${q.id}`, finding: q.finding, a: null, b: q, iou: null });
  });
  return rows;
}

/** Which reader's box a row keeps at first: a pair keeps A's, a lone box is left out (the
 * reviewer decides), so the proposal holds only what both readers saw. */
export type BoxChoice = "a" | "b" | "none";

export function defaultBoxChoice(row: BoxRow): BoxChoice {
  return row.a && row.b ? "a" : "none";
}

/** The starting final findings: the call both readers made, else nothing (must be chosen). */
export function defaultFindings(keys: string[], a: Read, b: Read): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of keys) {
    const call = a.findings[key];
    if (call !== undefined && call === b.findings[key]) out[key] = call;
  }
  return out;
}

/** Findings still without a final call. */
export function undecided(keys: string[], final: Record<string, string>): string[] {
  return keys.filter((key) => !final[key]);
}

export function finalBoxes(rows: BoxRow[], choices: Record<string, BoxChoice>): FinalBox[] {
  const out: FinalBox[] = [];
  for (const row of rows) {
    const choice = choices[row.key] ?? defaultBoxChoice(row);
    const box = choice === "a" ? row.a : choice === "b" ? row.b : null;
    if (box) {
      const { instance_id, frame, x, y, width, height, finding } = box;
      const slices = slicesOf(box);
      out.push({ instance_id, frame, x, y, width, height, finding, ...(slices ? { slices } : {}) });
    }
  }
  return out;
}
