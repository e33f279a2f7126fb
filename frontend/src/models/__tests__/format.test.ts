import { describe, expect, it } from "vitest";
import {
  decisionLines,
  duration,
  etaText,
  figure,
  pairedText,
  shownStatus,
  stageText,
  withdrawnFlag,
  withinText,
} from "../format";
import type { Cycle, ModelVersion } from "../types";

const cycle = (over: Partial<Cycle> = {}): Cycle => ({
  id: 1,
  status: "running",
  stage: "training",
  progress: 40,
  trigger: "manual",
  triggered_by: "mona",
  label_count: 8,
  model_version_number: null,
  created_at: null,
  started_at: null,
  finished_at: null,
  chunks_done: 0,
  chunks_total: 0,
  ...over,
});

const version = (number: number, over: Partial<ModelVersion> = {}): ModelVersion => ({
  id: number,
  number,
  status: "candidate",
  label_count: 8,
  strategy: "uncertainty",
  metrics: { validation: { boxes: { map_50: 0.5 }, findings: { auroc_macro: -1 } } },
  created_at: "2026-12-05T10:00:00Z",
  promoted_at: null,
  model_kind: "builtin",
  code_version: "1",
  weights_sha256: "ab",
  ...over,
});

describe("Models page words", () => {
  it("shows a queued cycle at a stage of work as running", () => {
    expect(shownStatus(cycle({ status: "queued", stage: "training" }))).toBe("running");
    expect(shownStatus(cycle({ status: "queued", stage: "queued" }))).toBe("queued");
  });

  it("says the stage while working, done once succeeded, and where a failed cycle stopped", () => {
    expect(stageText(cycle({ status: "running", stage: "training" }))).toBe("training");
    expect(stageText(cycle({ status: "queued", stage: "queued" }))).toBe("");
    expect(stageText(cycle({ status: "succeeded", stage: "done" }))).toBe("done");
    expect(stageText(cycle({ status: "failed", stage: "training" }))).toBe("at training");
    expect(stageText(cycle({ status: "cancelled", stage: "scoring" }))).toBe("at scoring");
    // Failed before any work (no labels to learn from): not "failed queued".
    expect(stageText(cycle({ status: "failed", stage: "queued" }))).toBe("");
  });

  it("says the progress within training and scoring", () => {
    const training = cycle({ stage_progress: { stage: "training", unit: "steps", done: 3, total: 10 } });
    expect(withinText(training)).toBe("training step 3/10");
    const scoring = cycle({
      stage: "scoring",
      chunks_done: 1,
      chunks_total: 2,
      stage_progress: { stage: "scoring", unit: "cases", done: 5, total: 9 },
    });
    expect(withinText(scoring)).toBe("scored 5/9 cases (1/2 chunks)");
  });

  it("says what the time left leaves out", () => {
    const estimate = { seconds: 75, complete: false, basis: "" };
    expect(etaText(cycle({ estimate }))).toBe("about 1 min 15 s left for training (later stages not yet timed)");
    expect(duration(3700)).toBe("1 h 1 min");
  });

  it("never takes pycocotools' -1 for a score", () => {
    expect(figure(version(1), "boxes.map_50").value).toBe(0.5);
    expect(figure(version(1), "findings.auroc_macro")).toEqual({ value: null, missing: "not measured" });
  });

  it("states the decision with its inputs", () => {
    const v2 = version(2, {
      evidence: {
        validation_labels: 12,
        decision: {
          checked: true,
          verdict: "not promoted",
          metric: "combined",
          candidate_value: 0.3333,
          serving_value: 0.3333,
          compared_with: 1,
          validation_labels: 12,
          min_validation_labels: 20,
          bootstrap: null,
          bootstrap_error: "too few labels",
        },
      },
    });
    const lines = decisionLines(v2, [version(1), v2]);
    expect(lines.verdict).toBe("not promoted");
    expect(lines.inputs).toEqual([
      "combined 0.3333 vs v1 0.3333, both on the same 12 validation labels",
      "12 of the 20 validation labels automatic promotion needs",
      "no paired comparison: too few labels",
    ]);
    expect(pairedText(version(1), v2)).toContain("When v2 was trained, both were measured on the same 12 validation labels");
  });

  it("says what a CT version's promotion metric measures", () => {
    const measure = "the mean of FROC mean (LUNA16) and mAP, both at 3D IoU >= 0.1";
    const v2 = version(2, {
      evidence: {
        validation_labels: 20,
        decision: {
          checked: true,
          verdict: "promoted by its cycle",
          metric: "combined",
          measure,
          candidate_value: 0.9,
          serving_value: 0.5,
          compared_with: 1,
          validation_labels: 20,
          min_validation_labels: 20,
          bootstrap: { difference: 0.4, low: 0.2, high: 0.6, confidence: 0.95, resamples_used: 1000, beyond_noise: true },
        },
      },
    });
    const lines = decisionLines(v2, [version(1), v2]);
    expect(lines.inputs[0]).toBe(`combined (${measure}) 0.9000 vs v1 0.5000, both on the same 20 validation labels`);
    expect(pairedText(version(1), v2)).toContain(`combined (${measure}) v2 0.9000, v1 0.5000`);
  });
});

describe("trained on withdrawn data", () => {
  const base = (over: Partial<ModelVersion> = {}): ModelVersion => ({
    id: 1,
    number: 1,
    status: "promoted",
    label_count: 8,
    strategy: "hybrid",
    metrics: null,
    created_at: "2026-12-05T10:00:00Z",
    promoted_at: null,
    model_kind: "builtin",
    code_version: "1",
    weights_sha256: "ab",
    ...over,
  });

  it("flags a version with labels of withdrawn patients and says how many", () => {
    const flag = withdrawnFlag(base({ withdrawn_labels: 3, trained_on_withdrawn_data: true }));
    expect(flag?.text).toBe("trained on withdrawn data");
    expect(flag?.title).toContain("3 training labels of patients who withdrew consent");
    expect(withdrawnFlag(base({ withdrawn_labels: 1, trained_on_withdrawn_data: true }))?.title).toContain(
      "1 training label of",
    );
  });

  it("shows nothing for a clean version or an answer without the field", () => {
    expect(withdrawnFlag(base({ withdrawn_labels: 0, trained_on_withdrawn_data: false }))).toBeNull();
    expect(withdrawnFlag(base())).toBeNull();
  });
});
