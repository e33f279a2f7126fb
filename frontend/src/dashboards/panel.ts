/** One chart on the dashboard: a titled figure whose canvas carries its numbers in words
 * (aria-label), with a data table of the same numbers, hidden until "Table" is pressed. */

import type { Chart } from "chart.js";
import { h } from "../shared/dom";
import { type ChartKind, drawChart } from "./charts";
import { describe, isEmpty, type Series } from "./shape";

export type PanelSpec = {
  key: string;
  kind: ChartKind;
  /** The header of the table's first column: what a row is ("Day", "Annotator"). */
  rowHeader: string;
  /** Shown over an all-zero chart. */
  emptyText: string;
  /** The value axis's title, for charts whose unit is not a count. */
  axisTitle?: string;
};

export class ChartPanel {
  readonly element: HTMLElement;
  private readonly heading: HTMLElement;
  private readonly chartBox: HTMLElement;
  private readonly canvas: HTMLCanvasElement;
  private readonly empty: HTMLElement;
  private readonly tableBox: HTMLElement;
  private readonly toggle: HTMLButtonElement;
  private chart: Chart<"bar" | "line"> | null = null;

  constructor(private readonly spec: PanelSpec) {
    const titleId = `title-${spec.key}`;
    this.heading = h("h2", { id: titleId });
    this.toggle = h("button", {
      type: "button",
      class: "toggle",
      "aria-pressed": "false",
      "aria-controls": `table-box-${spec.key}`,
      title: "Show the numbers as a table",
      onclick: () => this.showTable(this.toggle.getAttribute("aria-pressed") !== "true"),
      text: "Table",
    });
    this.canvas = h("canvas", { role: "img", "data-testid": `chart-${spec.key}` });
    this.empty = h("p", { class: "empty", hidden: true, text: spec.emptyText });
    this.chartBox = h("div", { class: "chart-box" }, this.canvas, this.empty);
    this.tableBox = h("div", { class: "table-box", id: `table-box-${spec.key}`, hidden: true });
    this.element = h(
      "figure",
      { class: "panel", id: `panel-${spec.key}`, "aria-labelledby": titleId },
      h("figcaption", { class: "panel-head" }, this.heading, this.toggle),
      this.chartBox,
      this.tableBox,
    );
  }

  /** Draw ``series`` under ``title`` (a new chart each time: rows and datasets may change). */
  show(title: string, series: Series): void {
    this.heading.textContent = title;
    this.chart?.destroy();
    this.chart = drawChart(this.canvas, this.spec.kind, series, this.spec.axisTitle);
    this.canvas.setAttribute("aria-label", describe(title, series));
    this.empty.hidden = !isEmpty(series);
    this.tableBox.replaceChildren(this.table(title, series));
  }

  private showTable(on: boolean): void {
    this.toggle.setAttribute("aria-pressed", String(on));
    this.toggle.textContent = on ? "Chart" : "Table";
    this.tableBox.hidden = !on;
    this.chartBox.hidden = on;
  }

  private table(title: string, series: Series): HTMLTableElement {
    const cell = (v: number | null) => (v === null ? "—" : String(v));
    return h(
      "table",
      { class: "numbers", "data-testid": `table-${this.spec.key}` },
      h("caption", { text: title }),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", { scope: "col", text: this.spec.rowHeader }),
          series.datasets.map((d) => h("th", { scope: "col", class: "num", "data-dataset": d.key }, d.label)),
        ),
      ),
      h(
        "tbody",
        {},
        series.rows.map((row, r) =>
          h(
            "tr",
            { "data-row": row.key },
            h("th", { scope: "row", text: row.label }),
            series.datasets.map((d) =>
              h("td", { class: "num", "data-dataset": d.key }, cell(d.values[r])),
            ),
          ),
        ),
      ),
    );
  }
}
