/** Pure shaping of the dashboard endpoints' JSON into what a chart, its data table and its
 * aria-label show: rows (the category axis) by datasets (the bars or lines). No DOM, no Chart.js:
 * tested by __tests__/shape.test.ts. */

import type {
  CaseStates,
  QueueDashboard,
  ReviewDashboard,
  SuggestionUse,
  ThroughputDashboard,
} from "./types";

export type Row = { key: string; label: string };
export type Dataset = { key: string; label: string; color: string; values: (number | null)[] };
/** One chart's numbers: ``datasets[d].values[r]`` is the value of dataset d at row r. */
export type Series = { rows: Row[]; datasets: Dataset[] };

type Part<K extends string> = { key: K; label: string; color: string };

// One colour per meaning across charts: blue waits for a reviewer, red went back, green is done.
export const CASE_STATES: Part<keyof CaseStates>[] = [
  { key: "returned", label: "Returned", color: "#c53030" },
  { key: "submitted", label: "Submitted", color: "#2b6cb0" },
  { key: "accepted", label: "Accepted", color: "#2f855a" },
  { key: "leased", label: "Leased", color: "#805ad5" },
  { key: "draft", label: "Draft", color: "#dd6b20" },
  { key: "skipped", label: "Skipped", color: "#b7791f" },
  { key: "waiting", label: "Waiting", color: "#a0aec0" },
];

export const SUGGESTION_USE: Part<keyof SuggestionUse>[] = [
  { key: "accepted", label: "Accepted unchanged", color: "#2f855a" },
  { key: "edited", label: "Edited", color: "#2b6cb0" },
  { key: "rejected", label: "Rejected", color: "#c53030" },
  { key: "drawn", label: "Drawn (no suggestion)", color: "#805ad5" },
];

type ReviewCounts = Omit<ReviewDashboard["annotators"][number], "annotator">;
export const REVIEW_OUTCOMES: Part<keyof ReviewCounts>[] = [
  { key: "awaiting_review", label: "Awaiting review", color: "#2b6cb0" },
  { key: "returned", label: "Returned", color: "#c53030" },
  { key: "accepted", label: "Accepted", color: "#2f855a" },
];

// Tableau 10: distinct for up to ten annotators, then it repeats.
const ANNOTATOR_COLORS = [
  "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
  "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
];

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** "2024-05-03" -> "May 3" (UTC days, as the API counts them; no locale surprises). */
export function shortDate(iso: string): string {
  const [, month, day] = iso.slice(0, 10).split("-").map(Number);
  return `${MONTHS[month - 1]} ${day}`;
}

/** Every ISO day from ``start`` to ``end``, both included. */
export function dateRange(start: string, end: string): string[] {
  const days: string[] = [];
  const last = Date.parse(`${end}T00:00:00Z`);
  for (let t = Date.parse(`${start}T00:00:00Z`); t <= last; t += 86_400_000) {
    days.push(new Date(t).toISOString().slice(0, 10));
  }
  return days;
}

/** A duration as a lead reads it: "45 s", "12 min", "3 h 20 min", "2 d 4 h". */
export function formatDuration(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return minutes % 60 ? `${hours} h ${minutes % 60} min` : `${hours} h`;
  const days = Math.floor(hours / 24);
  return hours % 24 ? `${days} d ${hours % 24} h` : `${days} d`;
}

function byParts<T, K extends string>(
  rows: Row[],
  items: T[],
  parts: Part<K>[],
  value: (item: T, key: K) => number | null,
): Series {
  return {
    rows,
    datasets: parts.map((p) => ({ ...p, values: items.map((item) => value(item, p.key)) })),
  };
}

/** Training and validation cases, each counted once in its state (stacked to the total). */
export function queueStates(queue: QueueDashboard): Series {
  const rows = [
    { key: "cases", label: "Training" },
    { key: "validation", label: "Validation" },
  ];
  return byParts(rows, [queue.cases, queue.validation], CASE_STATES, (s, k) => s[k]);
}

/** Cases still needing reads at the end of each day. */
export function burnDown(queue: QueueDashboard): Series {
  const days = queue.burn_down;
  return {
    rows: days.map((d) => ({ key: d.date, label: shortDate(d.date) })),
    datasets: [
      { key: "remaining", label: "Remaining", color: "#2b6cb0", values: days.map((d) => d.remaining) },
      {
        key: "validation_remaining",
        label: "Validation remaining",
        color: "#dd6b20",
        values: days.map((d) => d.validation_remaining),
      },
    ],
  };
}

/** Submissions per day of the window, one dataset per annotator; days without any are 0. */
export function dailySubmissions(throughput: ThroughputDashboard): Series {
  const days = dateRange(throughput.start, throughput.end);
  return {
    rows: days.map((d) => ({ key: d, label: shortDate(d) })),
    datasets: throughput.annotators.map((a, i) => {
      const perDay = new Map(a.daily.map((d) => [d.date, d.submitted]));
      return {
        key: a.annotator,
        label: a.annotator,
        color: ANNOTATOR_COLORS[i % ANNOTATOR_COLORS.length],
        values: days.map((d) => perDay.get(d) ?? 0),
      };
    }),
  };
}

function annotatorRows(annotators: { annotator: string }[]): Row[] {
  return annotators.map((a) => ({ key: a.annotator, label: a.annotator }));
}

/** Median minutes from opening a case to its first submission (one decimal; null: none timed). */
export function medianMinutes(throughput: ThroughputDashboard): Series {
  const values = throughput.annotators.map((a) =>
    a.median_seconds_to_first_submit === null
      ? null
      : Math.round(a.median_seconds_to_first_submit / 6) / 10,
  );
  return {
    rows: annotatorRows(throughput.annotators),
    datasets: [{ key: "median_minutes", label: "Median minutes", color: "#4e79a7", values }],
  };
}

/** What each annotator did with suggested boxes, and the boxes drawn without one. */
export function suggestionUse(throughput: ThroughputDashboard): Series {
  const annotators = throughput.annotators;
  return byParts(annotatorRows(annotators), annotators, SUGGESTION_USE, (a, k) => a.suggestions[k]);
}

/** Each annotator's current annotations by review outcome. */
export function reviewLoad(review: ReviewDashboard): Series {
  const annotators = review.annotators;
  return byParts(annotatorRows(annotators), annotators, REVIEW_OUTCOMES, (a, k) => a[k]);
}

export function isEmpty(series: Series): boolean {
  return !series.datasets.some((d) => d.values.some((v) => v !== null && v !== 0));
}

const show = (v: number | null) => (v === null ? "none" : String(v));

/** The chart's numbers in words for its aria-label: every value when there are few rows; per
 * dataset its first, last and peak when there are many (the data table has them all). */
export function describe(title: string, series: Series): string {
  if (series.rows.length === 0 || series.datasets.length === 0) return `${title}: no data.`;
  if (series.rows.length <= 8) {
    const rows = series.rows.map((row, r) => {
      const parts = series.datasets.map((d) =>
        series.datasets.length === 1 ? show(d.values[r]) : `${d.label} ${show(d.values[r])}`,
      );
      return `${row.label}: ${parts.join(", ")}`;
    });
    return `${title}. ${rows.join("; ")}.`;
  }
  const first = series.rows[0].label;
  const last = series.rows[series.rows.length - 1].label;
  const datasets = series.datasets.map((d) => {
    const numbers = d.values.filter((v): v is number => v !== null);
    const peak = numbers.length ? Math.max(...numbers) : null;
    return `${d.label} ${show(d.values[0])} on ${first}, ${show(d.values[d.values.length - 1])} on ${last}, peak ${show(peak)}`;
  });
  return `${title}, ${first} to ${last}. ${datasets.join("; ")}.`;
}

export type Tile = {
  key: string;
  label: string;
  value: string;
  detail: string;
  tone?: "warning";
};

/** The number tiles above the charts. ``now`` in ms since the epoch (for the oldest's age). */
export function tiles(queue: QueueDashboard, review: ReviewDashboard, now: number): Tile[] {
  const { cases, validation } = queue;
  const oldest = review.oldest_submitted_at;
  const topSkip = queue.skip_reasons[0];
  return [
    {
      key: "total",
      label: "Cases",
      value: String(cases.total),
      detail: `${cases.complete} complete · +${validation.total} validation`,
    },
    {
      key: "open",
      label: "Open",
      value: String(cases.open),
      detail: `${cases.waiting} waiting · +${validation.open} validation`,
    },
    {
      key: "expired-leases",
      label: "Expired leases",
      value: String(queue.expired_leases),
      detail: "not yet released",
      tone: queue.expired_leases > 0 ? "warning" : undefined,
    },
    {
      key: "review-queue",
      label: "Review queue",
      value: String(review.queue_size),
      detail: "awaiting a reviewer",
    },
    {
      key: "oldest-waiting",
      label: "Oldest waiting",
      value: oldest ? formatDuration(now - Date.parse(oldest)) : "—",
      detail: oldest ? `submitted ${shortDate(oldest)}` : "nothing to review",
    },
    {
      key: "skips",
      label: "Skips",
      value: String(queue.skips),
      detail: topSkip ? `most: ${topSkip.reason} (${topSkip.count})` : "none",
    },
  ];
}
