/** The Models page's words and numbers: pure functions of the API's answers (unit tests in
 * __tests__/format.test.ts). */

import type { Cycle, Decision, Figure, ModelVersion } from "./types";

export const ACTIVE = new Set(["queued", "running"]);
/** Stages of work: a cycle at one of them is running whatever an older answer said. */
const WORK_STAGES = new Set(["training", "evaluating", "registering", "scoring", "ranking"]);

/** The validation figures the versions table shows, in its column order. */
export const METRICS = ["boxes.map_50", "findings.auroc_macro", "reports.bleu_4"];
export const FIGURE_NAMES: Record<string, string> = {
  "boxes.map_50": "mAP@0.5",
  "findings.auroc_macro": "AUROC macro",
  "reports.bleu_4": "BLEU-4",
  "reports.finding_f1_micro": "report finding F1",
  combined: "combined",
};

export function isActive(cycle: Cycle | null | undefined): boolean {
  return cycle !== null && cycle !== undefined && ACTIVE.has(cycle.status);
}

export function shownStatus(cycle: Cycle): string {
  return cycle.status === "queued" && WORK_STAGES.has(cycle.stage) ? "running" : cycle.status;
}

/** The words beside the status badge: the stage while the cycle works and "done" once it
 * succeeded; for a failed or cancelled cycle where it stopped ("at training"), and nothing when
 * it stopped before any work (its stage still reads "queued"). */
export function stageText(cycle: Cycle): string {
  const stage = cycle.stage ?? "";
  if (cycle.status === "failed" || cycle.status === "cancelled") {
    return WORK_STAGES.has(stage) ? `at ${stage}` : "";
  }
  return stage && stage !== shownStatus(cycle) ? stage : "";
}

/** A raw validation metric by dotted path; pycocotools reports -1 where there is no ground
 * truth: not a score. */
export function metric(version: ModelVersion, path: string): number | null {
  let value: unknown = (version.metrics ?? {}).validation;
  for (const key of path.split(".")) {
    value = value && typeof value === "object" ? (value as Record<string, unknown>)[key] : undefined;
  }
  return typeof value === "number" && Number.isFinite(value) && value >= 0 ? value : null;
}

/** A figure of the version (the evidence the server explains), else the raw metric. */
export function figure(version: ModelVersion, path: string): Figure {
  const figures = version.evidence?.figures ?? {};
  if (figures[path]) return figures[path];
  const value = metric(version, path);
  return { value, missing: value === null ? "not measured" : "" };
}

/** The "trained on withdrawn data" flag of a version: null when none of its training labels
 * belongs to a patient who withdrew consent, else the badge's text and its explanation. */
export function withdrawnFlag(version: ModelVersion): { text: string; title: string } | null {
  const count = version.withdrawn_labels ?? 0;
  if (!version.trained_on_withdrawn_data && count <= 0) return null;
  const labels = count === 1 ? "1 training label" : `${count} training labels`;
  return {
    text: "trained on withdrawn data",
    title: `${labels} of patients who withdrew consent. A new cycle's label snapshot leaves them out.`,
  };
}

/** FROC, the LUNA16 measure: a 3D version's figures at 1/8 ... 8 false positives per scan. */
export const FROC_RATES: [string, string][] = [
  ["0.125", "1/8"],
  ["0.25", "1/4"],
  ["0.5", "1/2"],
  ["1", "1"],
  ["2", "2"],
  ["4", "4"],
  ["8", "8"],
];

/** A 3D version's FROC in words (sensitivity at each rate of false positives per scan, their
 * mean, mAP at 3D IoU 0.1), or null for a version whose figures have no FROC (a 2D one). */
export function frocLine(version: ModelVersion): string | null {
  const figures = version.evidence?.figures ?? {};
  const mean = figures["froc.froc_mean"];
  if (!mean) return null;
  const at = FROC_RATES.map(([rate, name]) => {
    const value = figures[`froc.sensitivity_at_${rate}_fp`]?.value;
    return `${figureText(value)} at ${name}`;
  });
  const iou = version.evidence?.froc_iou;
  const match = typeof iou === "number" ? ` (3D IoU ≥ ${iou})` : "";
  if (mean.value === null) return `FROC${match}: — (${mean.missing})`;
  const map10 = figures["boxes.map_10"]?.value;
  return (
    `FROC${match}: mean sensitivity ${figureText(mean.value)}; ${at.join(", ")} false positives per scan` +
    ` · mAP@0.1 ${figureText(map10)}`
  );
}

export function validationLabels(version: ModelVersion): number | null {
  const count = version.evidence?.validation_labels;
  return Number.isInteger(count) ? (count as number) : null;
}

export function when(iso: string | null | undefined): string {
  if (!iso) return "—";
  const date = new Date(iso);
  const day = date.toLocaleDateString(undefined, { month: "short", day: "numeric" });
  const time = date.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
  return `${day}, ${time}`;
}

export function duration(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return "—";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

export function cycleSeconds(cycle: Cycle, now: Date = new Date()): number | null {
  const start = cycle.started_at || cycle.created_at;
  const end = cycle.finished_at ? new Date(cycle.finished_at) : now;
  return start ? (end.getTime() - new Date(start).getTime()) / 1000 : null;
}

export function figureText(value: number | null | undefined): string {
  return value === null || value === undefined ? "—" : value.toFixed(3);
}

export function signed(value: number | null | undefined): string {
  if (value === null || value === undefined) return "n/a";
  return `${value >= 0 ? "+" : "−"}${Math.abs(value).toFixed(4)}`;
}

export function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
}

const fourPlaces = (v: number | null | undefined): string =>
  v === null || v === undefined ? "none" : v.toFixed(4);

/** Progress inside the stage: steps of training, cases of scoring (and chunks done). */
export function withinText(cycle: Cycle): string {
  const within = cycle.stage_progress ?? {};
  const chunks = cycle.chunks_total ? ` (${cycle.chunks_done}/${cycle.chunks_total} chunks)` : "";
  if (within.stage === cycle.stage && Number.isInteger(within.total)) {
    if (within.unit === "steps") return `training step ${within.done}/${within.total}`;
    if (within.unit === "cases") return `scored ${within.done}/${within.total} cases${chunks}`;
  }
  return cycle.chunks_total ? `scored ${cycle.chunks_done}/${cycle.chunks_total} chunks` : "";
}

export function etaText(cycle: Cycle): string {
  const estimate = cycle.estimate;
  if (!estimate) return "";
  if (estimate.seconds === null) {
    return shownStatus(cycle) === "queued" ? "" : "estimating the time left…";
  }
  const left = `about ${duration(estimate.seconds)} left`;
  return estimate.complete ? left : `${left} for ${cycle.stage} (later stages not yet timed)`;
}

function bootstrapInterval(b: NonNullable<Decision["bootstrap"]>): string {
  return `${Math.round(b.confidence * 100)} % interval [${signed(b.low)}, ${signed(b.high)}] over ${b.resamples_used} resamples`;
}

/** The promotion metric of a decision, with what it measures where its name does not say. */
function metricText(decision: Decision): string {
  return decision.measure ? `${decision.metric} (${decision.measure})` : `${decision.metric}`;
}

/** The promotion decision and the inputs it was made on, in words. */
export function decisionLines(
  version: ModelVersion,
  versions: ModelVersion[],
): { verdict: string; inputs: string[]; reason?: string } {
  const decision = version.evidence?.decision;
  if (!decision) return { verdict: "—", inputs: [] };
  if (!decision.checked) return { verdict: decision.verdict, inputs: [] };
  const inputs: string[] = [];
  const n = decision.validation_labels;
  if (decision.compared_with !== null && decision.compared_with !== undefined) {
    const against = versions.find((v) => v.number === decision.compared_with);
    const own = against ? validationLabels(against) : null;
    const again =
      own !== null && own !== n
        ? ` (v${decision.compared_with} measured again on these labels; its row shows it on its own ${plural(own, "validation label")})`
        : "";
    inputs.push(
      `${metricText(decision)} ${fourPlaces(decision.candidate_value)} vs ` +
        `v${decision.compared_with} ${fourPlaces(decision.serving_value)}, both on the same ` +
        `${plural(n, "validation label")}${again}`,
    );
  } else {
    inputs.push(
      `${metricText(decision)} ${fourPlaces(decision.candidate_value)} on ` +
        `${plural(n, "validation label")}; no version was serving`,
    );
  }
  if (n < decision.min_validation_labels) {
    inputs.push(`${n} of the ${decision.min_validation_labels} validation labels automatic promotion needs`);
  }
  const b = decision.bootstrap;
  if (b) {
    inputs.push(
      `paired bootstrap: difference ${signed(b.difference)}, ${bootstrapInterval(b)} ` +
        `(${b.beyond_noise ? "beyond noise" : "not beyond noise"})`,
    );
  } else if (decision.bootstrap_error) {
    inputs.push(`no paired comparison: ${decision.bootstrap_error}`);
  }
  return { verdict: decision.verdict, inputs, reason: decision.reason };
}

/** The paired comparison between the two versions, from whichever of them was checked against
 * the other when its cycle ran. */
export function pairedText(target: ModelVersion, serving: ModelVersion | null): string {
  if (!serving) return "No version serves now: nothing to compare with.";
  for (const [newer, older] of [
    [target, serving],
    [serving, target],
  ]) {
    const decision = newer.evidence?.decision;
    if (decision?.checked && decision.compared_with === older.number) {
      const n = plural(decision.validation_labels, "validation label");
      const b = decision.bootstrap;
      let text =
        `When v${newer.number} was trained, both were measured on the same ${n}: ` +
        `${metricText(decision)} v${newer.number} ${fourPlaces(decision.candidate_value)}, ` +
        `v${older.number} ${fourPlaces(decision.serving_value)}. `;
      text += b
        ? `Paired bootstrap of v${newer.number} − v${older.number}: ${signed(b.difference)}, ` +
          `${bootstrapInterval(b)}: ${b.beyond_noise ? "a gain beyond noise" : "no gain beyond noise"}.`
        : `No paired bootstrap: ${decision.bootstrap_error || decision.reason}.`;
      return `${text} The guard on v${newer.number}: ${decision.verdict}.`;
    }
  }
  const compared = target.evidence?.decision?.compared_with;
  const other = compared ? `, only with v${compared}` : "";
  return (
    `No paired comparison between v${target.number} and v${serving.number}: ` +
    `neither was checked against the other${other}.`
  );
}

/** The version that served before ``serving`` (the one a roll back returns to). */
export function previousServing(versions: ModelVersion[], serving: ModelVersion | null): ModelVersion | null {
  const earlier = versions.filter(
    (v) => v.promoted_at && v.status !== "failed" && (!serving || v.id !== serving.id),
  );
  earlier.sort((a, b) => new Date(b.promoted_at as string).getTime() - new Date(a.promoted_at as string).getTime());
  return earlier[0] ?? null;
}
