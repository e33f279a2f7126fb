import { describe, expect, it } from "vitest";
import { frocLine } from "../format";
import type { Figure, ModelVersion } from "../types";

const version = (figures: Record<string, Figure>, froc_iou: number | null = 0.1): ModelVersion => ({
  id: 1,
  number: 1,
  status: "candidate",
  label_count: 8,
  strategy: "uncertainty",
  metrics: null,
  evidence: { figures, froc_iou },
  created_at: "2026-12-06T10:00:00Z",
  promoted_at: null,
  model_kind: "ct_retinanet3d",
  code_version: "1",
  weights_sha256: "ab",
});

const at = (value: number | null): Figure => ({ value, missing: value === null ? "no lesion box" : "" });

describe("a 3D version's FROC on the Models page", () => {
  it("names the sensitivity at each of LUNA16's rates, their mean and mAP@0.1", () => {
    const rates = ["0.125", "0.25", "0.5", "1", "2", "4", "8"];
    const values = [0.5, 0.5, 0.5, 1, 1, 1, 1];
    const figures: Record<string, Figure> = Object.fromEntries(
      rates.map((rate, k) => [`froc.sensitivity_at_${rate}_fp`, at(values[k])]),
    );
    figures["froc.froc_mean"] = at(0.7143);
    figures["boxes.map_10"] = at(0.7526);
    const line = frocLine(version(figures));
    expect(line).toBe(
      "FROC (3D IoU ≥ 0.1): mean sensitivity 0.714; 0.500 at 1/8, 0.500 at 1/4, 0.500 at 1/2, " +
        "1.000 at 1, 1.000 at 2, 1.000 at 4, 1.000 at 8 false positives per scan · mAP@0.1 0.753",
    );
  });

  it("says why FROC is missing, and shows nothing for a 2D version", () => {
    const missing = { value: null, missing: "no lesion box among its 1 validation label; FROC needs at least one" };
    expect(frocLine(version({ "froc.froc_mean": missing }))).toBe(
      "FROC (3D IoU ≥ 0.1): — (no lesion box among its 1 validation label; FROC needs at least one)",
    );
    expect(frocLine(version({ "boxes.map_50": at(0.4) }, null))).toBeNull();
  });
});
