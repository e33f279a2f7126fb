/** Agreement between readers on double-read cases (GET /api/projects/{id}/agreement/), shaped
 * for the lead's dashboard: per finding, Cohen's kappa of the present/absent calls and box F1 at
 * IoU 0.5; tiles for the double reads and the adjudication queue. Pure: tested in __tests__. */

import type { Series } from "./shape";

export type Agreement = {
  cases: number;
  double_read_cases: number;
  status_counts: { agreed: number; pending: number; adjudicated: number };
  box_f1: number | null;
  box_f1_per_class: Record<string, { f1: number; matched: number; boxes: number }>;
  kappa_per_finding: Record<string, { kappa: number | null; cases: number; undefined: string }>;
  report_rouge_l: number | null;
  report_edit_distance: number | null;
};

export type FindingName = { key: string; name: string };

const round = (v: number | null | undefined): number | null =>
  v === null || v === undefined ? null : Math.round(v * 100) / 100;

/** Rows: the schema's findings; datasets: kappa and box F1 (null where undefined or no box). */
export function agreementSeries(data: Agreement, findings: FindingName[]): Series {
  return {
    rows: findings.map((f) => ({ key: f.key, label: f.name })),
    datasets: [
      {
        key: "kappa",
        label: "Cohen's kappa (findings)",
        color: "#2b6cb0",
        values: findings.map((f) => round(data.kappa_per_finding[f.key]?.kappa)),
      },
      {
        key: "box-f1",
        label: "Box F1 at IoU 0.5",
        color: "#dd6b20",
        values: findings.map((f) => round(data.box_f1_per_class[f.key]?.f1)),
      },
    ],
  };
}

export type AgreementTile = { key: string; label: string; value: string; detail: string; tone?: "warning" };

export function agreementTiles(data: Agreement): AgreementTile[] {
  const { agreed, pending, adjudicated } = data.status_counts;
  return [
    {
      key: "double-reads",
      label: "Double reads",
      value: String(data.cases),
      detail: `${agreed} agreed · of ${data.double_read_cases} chosen`,
    },
    {
      key: "adjudication",
      label: "To adjudicate",
      value: String(pending),
      detail: `${adjudicated} adjudicated · box F1 ${data.box_f1 === null ? "—" : data.box_f1.toFixed(2)}`,
      tone: pending > 0 ? "warning" : undefined,
    },
  ];
}
