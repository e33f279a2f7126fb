import { describe as group, expect, it } from "vitest";
import {
  burnDown,
  dailySubmissions,
  dateRange,
  describe,
  formatDuration,
  isEmpty,
  medianMinutes,
  queueStates,
  reviewLoad,
  shortDate,
  suggestionUse,
  tiles,
} from "../shape";
import type { CaseStates, QueueDashboard, ReviewDashboard, ThroughputDashboard } from "../types";

const states = (over: Partial<CaseStates>): CaseStates => ({
  total: 0, open: 0, complete: 0, returned: 0, submitted: 0, accepted: 0, leased: 0, draft: 0,
  skipped: 0, waiting: 0, ...over,
});

const QUEUE: QueueDashboard = {
  cases: states({ total: 10, open: 7, complete: 3, returned: 1, submitted: 2, accepted: 1, leased: 1, draft: 1, skipped: 1, waiting: 3 }),
  validation: states({ total: 2, open: 1, complete: 1, submitted: 1, waiting: 1 }),
  expired_leases: 1,
  skips: 1,
  skip_reasons: [{ reason: "motion artefact", count: 1 }],
  burn_down: [
    { date: "2024-05-01", remaining: 8, validation_remaining: 2 },
    { date: "2024-05-02", remaining: 7, validation_remaining: 1 },
  ],
};

const use = (accepted: number, edited: number, rejected: number, drawn: number) => ({
  accepted, edited, rejected, drawn, suggested: accepted + edited + rejected,
  accepted_share: null, edited_share: null, rejected_share: null,
});

const THROUGHPUT: ThroughputDashboard = {
  days: 3,
  start: "2024-04-30",
  end: "2024-05-02",
  annotators: [
    {
      annotator: "ann", submitted: 3, returned: 1, timed_cases: 3, median_seconds_to_first_submit: 300,
      daily: [{ date: "2024-04-30", submitted: 0 }, { date: "2024-05-01", submitted: 2 }, { date: "2024-05-02", submitted: 1 }],
      suggestions: use(2, 1, 1, 1),
    },
    {
      annotator: "bob", submitted: 1, returned: 0, timed_cases: 0, median_seconds_to_first_submit: null,
      daily: [{ date: "2024-05-02", submitted: 1 }],
      suggestions: use(0, 0, 2, 2),
    },
  ],
  suggestions: use(2, 1, 3, 3),
};

const REVIEW: ReviewDashboard = {
  queue_size: 2,
  oldest_submitted_at: "2024-05-01T10:00:00Z",
  annotators: [
    { annotator: "ann", awaiting_review: 1, returned: 0, accepted: 1 },
    { annotator: "bob", awaiting_review: 1, returned: 1, accepted: 0 },
  ],
};

group("dates and durations", () => {
  it("writes UTC days short and counts a window with both ends", () => {
    expect(shortDate("2024-05-03")).toBe("May 3");
    expect(shortDate("2024-12-31T23:00:00Z")).toBe("Dec 31");
    expect(dateRange("2024-02-27", "2024-03-01")).toEqual(["2024-02-27", "2024-02-28", "2024-02-29", "2024-03-01"]);
  });

  it("reads a duration in the largest two units", () => {
    expect(formatDuration(45_000)).toBe("45 s");
    expect(formatDuration(12 * 60_000)).toBe("12 min");
    expect(formatDuration((3 * 60 + 20) * 60_000)).toBe("3 h 20 min");
    expect(formatDuration((2 * 24 + 4) * 3_600_000)).toBe("2 d 4 h");
    expect(formatDuration(-5)).toBe("0 s");
  });
});

group("series", () => {
  it("stacks training and validation cases by state, in the API's order", () => {
    const series = queueStates(QUEUE);
    expect(series.rows.map((r) => r.label)).toEqual(["Training", "Validation"]);
    expect(series.datasets.map((d) => d.key)).toEqual(["returned", "submitted", "accepted", "leased", "draft", "skipped", "waiting"]);
    const total = (r: number) => series.datasets.reduce((sum, d) => sum + (d.values[r] ?? 0), 0);
    expect([total(0), total(1)]).toEqual([10, 2]);
  });

  it("draws the burn-down per day", () => {
    const series = burnDown(QUEUE);
    expect(series.rows).toEqual([{ key: "2024-05-01", label: "May 1" }, { key: "2024-05-02", label: "May 2" }]);
    expect(series.datasets.map((d) => d.values)).toEqual([[8, 7], [2, 1]]);
  });

  it("fills every day of the window for every annotator", () => {
    const series = dailySubmissions(THROUGHPUT);
    expect(series.rows.map((r) => r.key)).toEqual(["2024-04-30", "2024-05-01", "2024-05-02"]);
    expect(series.datasets.map((d) => [d.key, d.values])).toEqual([["ann", [0, 2, 1]], ["bob", [0, 0, 1]]]);
    expect(new Set(series.datasets.map((d) => d.color)).size).toBe(2);
  });

  it("turns median seconds into minutes and keeps 'none timed' apart from zero", () => {
    expect(medianMinutes(THROUGHPUT).datasets[0].values).toEqual([5, null]);
  });

  it("stacks suggestion use and review outcomes per annotator", () => {
    const suggestions = suggestionUse(THROUGHPUT);
    expect(suggestions.datasets.map((d) => [d.key, d.values])).toEqual([
      ["accepted", [2, 0]], ["edited", [1, 0]], ["rejected", [1, 2]], ["drawn", [1, 2]],
    ]);
    const review = reviewLoad(REVIEW);
    expect(review.rows.map((r) => r.key)).toEqual(["ann", "bob"]);
    expect(review.datasets.map((d) => d.values)).toEqual([[1, 1], [0, 1], [1, 0]]);
  });

  it("knows an all-zero chart from one with numbers", () => {
    expect(isEmpty(reviewLoad({ queue_size: 0, oldest_submitted_at: null, annotators: [] }))).toBe(true);
    expect(isEmpty(medianMinutes({ ...THROUGHPUT, annotators: [{ ...THROUGHPUT.annotators[1] }] }))).toBe(true);
    expect(isEmpty(reviewLoad(REVIEW))).toBe(false);
  });
});

group("words for screen readers", () => {
  it("reads every value of a short series", () => {
    expect(describe("Median minutes", medianMinutes(THROUGHPUT))).toBe("Median minutes. ann: 5; bob: none.");
    expect(describe("Cases by state", queueStates(QUEUE))).toContain(
      "Validation: Returned 0, Submitted 1, Accepted 0, Leased 0, Draft 0, Skipped 0, Waiting 1",
    );
  });

  it("reads first, last and peak of a long series", () => {
    const queue = {
      ...QUEUE,
      burn_down: dateRange("2024-05-01", "2024-05-10").map((date, i) => ({ date, remaining: 10 - i, validation_remaining: 2 })),
    };
    expect(describe("Burn-down", burnDown(queue))).toBe(
      "Burn-down, May 1 to May 10. Remaining 10 on May 1, 1 on May 10, peak 10; " +
        "Validation remaining 2 on May 1, 2 on May 10, peak 2.",
    );
  });
});

group("tiles", () => {
  it("shows totals, open, expired leases, review queue, the oldest's age and skips", () => {
    const now = Date.parse("2024-05-02T13:30:00Z");
    const shown = Object.fromEntries(tiles(QUEUE, REVIEW, now).map((t) => [t.key, t]));
    expect(shown.total.value).toBe("10");
    expect(shown.total.detail).toBe("3 complete · +2 validation");
    expect(shown.open.value).toBe("7");
    expect(shown["expired-leases"]).toMatchObject({ value: "1", tone: "warning" });
    expect(shown["review-queue"].value).toBe("2");
    expect(shown["oldest-waiting"]).toMatchObject({ value: "1 d 3 h", detail: "submitted May 1" });
    expect(shown.skips.detail).toBe("most: motion artefact (1)");
  });

  it("says so when nothing waits for review", () => {
    const shown = tiles(QUEUE, { queue_size: 0, oldest_submitted_at: null, annotators: [] }, 0);
    expect(shown.find((t) => t.key === "oldest-waiting")?.value).toBe("—");
  });
});
