import { describe, expect, it } from "vitest";
import { type Agreement, agreementSeries, agreementTiles } from "../agreement";

const data: Agreement = {
  cases: 4,
  double_read_cases: 6,
  status_counts: { agreed: 3, pending: 1, adjudicated: 0 },
  box_f1: 0.5,
  box_f1_per_class: { nodule: { f1: 0.6667, matched: 1, boxes: 3 } },
  kappa_per_finding: {
    nodule: { kappa: 0.5, cases: 4, undefined: "" },
    mass: { kappa: null, cases: 4, undefined: "both readers read every case absent" },
  },
  report_rouge_l: 0.8,
  report_edit_distance: 0.2,
};

describe("agreementSeries", () => {
  it("gives kappa and box F1 per finding, null where undefined", () => {
    const series = agreementSeries(data, [
      { key: "nodule", name: "Nodule" },
      { key: "mass", name: "Mass" },
    ]);
    expect(series.rows.map((r) => r.label)).toEqual(["Nodule", "Mass"]);
    expect(series.datasets[0].values).toEqual([0.5, null]);
    expect(series.datasets[1].values).toEqual([0.67, null]);
  });
});

describe("agreementTiles", () => {
  it("warns while cases wait for adjudication", () => {
    const [reads, queue] = agreementTiles(data);
    expect(reads.value).toBe("4");
    expect(reads.detail).toBe("3 agreed · of 6 chosen");
    expect(queue).toMatchObject({ value: "1", tone: "warning" });
    expect(queue.detail).toContain("box F1 0.50");
  });
});
