/** Which images the adjudication page shows, and which boxes over each (pure; tested by
 * __tests__/figures.test.ts). A radiograph: every instance with its boxes. A CT or MR series:
 * not every slice but its key slices, those the readers drew on (or its middle slice when
 * nobody drew), each with every 3D box whose slice range holds it and the 2D boxes drawn on it;
 * the slice's number comes from the series' stack (the server's order along the normal). */

import { isStackSeries } from "../workspace/images";
import type { Series } from "../workspace/types";
import { type BoxRow, type ReadBox, slicesOf } from "./merge";

export type FigureBox = { row: string; side: 0 | 1; box: ReadBox };

export type Figure = {
  instance: { id: number; rows: number; columns: number; instance_number?: number | null };
  /** e.g. "Series 4 · slice 7 / 24"; empty for a radiograph. */
  caption: string;
  boxes: FigureBox[];
};

function sides(rows: BoxRow[]): FigureBox[] {
  return rows.flatMap((row) =>
    ([row.a, row.b] as const).flatMap((box, side) => (box ? [{ row: row.key, side: side as 0 | 1, box }] : [])),
  );
}

/** ``stacks``: for each stack series, its instance ids in stack order (when known). */
export function figures(series: Series[], rows: BoxRow[], stacks: Map<number, number[]>): Figure[] {
  const all = sides(rows);
  const out: Figure[] = [];
  for (const s of series) {
    const order = stacks.get(s.id);
    if (!isStackSeries(s) || !order?.length) {
      for (const instance of s.instances) {
        out.push({ instance, caption: "", boxes: all.filter((b) => !slicesOf(b.box) && b.box.instance_id === instance.id) });
      }
      continue;
    }
    const byId = new Map(s.instances.map((i) => [i.id, i]));
    const sliceOf = new Map(order.map((id, index) => [id, index + 1]));
    const mine = all.filter((b) => sliceOf.has(b.box.instance_id));
    const key = [...new Set(mine.map((b) => sliceOf.get(b.box.instance_id)!))].sort((p, q) => p - q);
    if (!key.length) key.push(Math.ceil(order.length / 2));
    for (const slice of key) {
      const instance = byId.get(order[slice - 1]);
      if (!instance) continue;
      const shown = mine.filter((b) => {
        const range = slicesOf(b.box);
        return range ? range[0] <= slice && slice <= range[1] : b.box.instance_id === instance.id;
      });
      out.push({ instance, caption: `Series ${s.id} · slice ${slice} / ${order.length}`, boxes: shown });
    }
  }
  return out;
}

/** A box in words: its size and place in pixels, and for a 3D box its series, slices and size
 * in mm (from its patient coordinates). */
export function describeBox(box: ReadBox | null): string {
  if (!box) return "—";
  const flat = `${Math.round(box.width)}×${Math.round(box.height)} at ${Math.round(box.x)},${Math.round(box.y)}`;
  const range = slicesOf(box);
  if (!range) return flat;
  const size = box.patient_mm?.size;
  const mm = size ? ` · ${size.map((v) => v.toFixed(1)).join(" × ")} mm` : "";
  return `series ${box.series_id} · slices ${range[0]}–${range[1]}${mm} · ${flat}`;
}
