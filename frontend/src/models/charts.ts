/** The Models page's charts (frontend/templates/frontend/models.html): the learning curve across
 * versions, per-class metrics of a chosen version, the acquisition scores of the open cases, and
 * how useful each version's suggestions were. The numbers come from
 * /api/projects/{id}/model-dashboard/; the page (./page.ts) asks for them again when a cycle
 * finished or a version was registered, promoted or rolled back. ``#model-charts[data-state]``
 * is loading, ready or error; ``[data-loads]`` counts the loads drawn. */

import "../dashboards/dashboard.css";
import "./charts.css";
import { Chart, type Point } from "chart.js";
import type { Api } from "../shared/api";
import { h } from "../shared/dom";
import { followPageColors } from "../dashboards/charts";
import * as shape from "./chart_shape";
import type { ModelDashboard } from "./chart_types";
import { ChartPanel, type PanelSpec } from "../dashboards/panel";
import type { Series } from "../dashboards/shape";

const PANELS = {
  curve: {
    key: "learning-curve",
    kind: "line",
    rowHeader: "Version",
    emptyText: "No version evaluated on validation labels yet.",
    axisTitle: "validation score",
  },
  perClass: {
    key: "per-class",
    kind: "bar",
    rowHeader: "Finding",
    emptyText: "This version has no per-class metrics.",
    axisTitle: "validation score",
  },
  scores: {
    key: "acquisition-scores",
    kind: "stacked-bar",
    rowHeader: "Score",
    emptyText: "No open cases.",
  },
  shares: {
    key: "suggestion-use",
    kind: "stacked-hbar",
    rowHeader: "Version",
    emptyText: "No submitted case showed a suggestion yet.",
    axisTitle: "% of suggested boxes",
  },
  corrections: {
    key: "corrections",
    kind: "bar",
    rowHeader: "Version",
    emptyText: "No submitted case showed a suggestion yet.",
    axisTitle: "per case",
  },
} satisfies Record<string, PanelSpec>;

type ChartSummary = {
  type: string;
  xScale: string | undefined;
  labels: unknown[];
  datasets: { label: string; data: unknown[]; pointRadius: unknown }[];
};

declare global {
  interface Window {
    /** Each chart's type, labels and data, by panel key: for browser tests and the console. */
    medloopModelCharts?: () => Record<string, ChartSummary | null>;
  }
}

export class ModelCharts {
  private readonly panels = {
    curve: new ChartPanel(PANELS.curve),
    perClass: new ChartPanel(PANELS.perClass),
    scores: new ChartPanel(PANELS.scores),
    shares: new ChartPanel(PANELS.shares),
    corrections: new ChartPanel(PANELS.corrections),
  };
  private readonly picker: HTMLSelectElement;
  private readonly alert: HTMLElement;
  private data: ModelDashboard | null = null;
  private chosen: number | null = null;
  private request = 0;
  private loads = 0;

  constructor(
    private readonly root: HTMLElement,
    private readonly api: Api,
    private readonly url: string,
  ) {
    this.alert = required(root, "#model-charts-alert");
    this.picker = h("select", {
      id: "per-class-version",
      "aria-label": "Version whose per-class metrics are shown",
      onchange: () => {
        this.chosen = Number(this.picker.value);
        this.showPerClass();
      },
    });
    // The picker sits in the per-class panel's head, before its Table toggle.
    const head = this.panels.perClass.element.querySelector(".panel-head");
    head?.insertBefore(this.picker, head.querySelector(".toggle"));
    this.panels.curve.element.classList.add("wide");
    required(root, "#model-chart-grid").replaceChildren(
      ...Object.values(this.panels).map((p) => p.element),
    );
    followPageColors(root);
    window.medloopModelCharts = () => this.summaries();
  }

  async load(): Promise<void> {
    const request = ++this.request;
    this.setState("loading");
    try {
      const data = (await this.api.request<ModelDashboard>("GET", this.url)).data;
      if (request !== this.request) return; // a later load overtook this one
      this.data = data;
      this.draw(data);
      this.alert.hidden = true;
      this.root.dataset.loads = String(++this.loads);
      this.setState("ready");
    } catch (err) {
      if (request !== this.request) return;
      console.error(err);
      this.alert.textContent = `The charts could not load: ${err instanceof Error ? err.message : String(err)}`;
      this.alert.hidden = false;
      this.setState("error");
    }
  }

  private draw(data: ModelDashboard): void {
    const curve = shape.learningCurve(data);
    this.panels.curve.show("Learning curve: validation metrics against training labels", curve);
    this.onLabelAxis(this.panels.curve, data, curve);
    this.fillPicker(data);
    this.showPerClass();
    this.panels.scores.show(shape.histogramTitle(data.acquisition), shape.scoreHistogram(data.acquisition));
    this.panels.shares.show("Use of suggested boxes per version", shape.suggestionShares(data.usefulness));
    this.panels.corrections.show("Corrections per case, per version", shape.corrections(data.usefulness));
  }

  private fillPicker(data: ModelDashboard): void {
    this.chosen = shape.pickVersion(data.per_class, this.chosen);
    this.picker.replaceChildren(
      ...data.per_class.map((v) =>
        h("option", { value: String(v.number), text: `v${v.number}${v.serving ? " (serving)" : ""}` }),
      ),
    );
    if (this.chosen !== null) this.picker.value = String(this.chosen);
    this.picker.disabled = data.per_class.length < 2;
  }

  private showPerClass(): void {
    if (!this.data) return;
    const which = this.chosen === null ? "no version" : `v${this.chosen}`;
    const series = shape.perClass(this.data.per_class, this.chosen);
    this.panels.perClass.show(`Per-class metrics · ${which}`, series);
    fixScoreAxis(this.canvas(this.panels.perClass));
  }

  /** The learning curve's x axis is the number of training labels (a linear scale, so uneven
   * steps between versions look uneven); the serving version's points are drawn larger. */
  private onLabelAxis(panel: ChartPanel, data: ModelDashboard, series: Series): void {
    const chart = Chart.getChart(this.canvas(panel));
    if (!chart) return;
    const points = shape.curvePoints(data, series);
    chart.data.datasets.forEach((dataset, d) => {
      // Chart.js leaves a gap at a null y; its Point type does not say so.
      dataset.data = points.datasets[d] as unknown as Point[];
      Object.assign(dataset, {
        pointRadius: points.serving.map((s) => (s ? 7 : 3)),
        pointHoverRadius: points.serving.map((s) => (s ? 9 : 5)),
        pointStyle: points.serving.map((s) => (s ? "rectRot" : "circle")),
        borderWidth: d === 0 ? 3 : 2,
      });
    });
    // A new scale object, as Chart.js documents for changing a scale's type.
    if (chart.options.scales) {
      chart.options.scales.x = {
        type: "linear",
        beginAtZero: true,
        grace: "5%",
        ticks: { precision: 0, maxTicksLimit: 8 },
        title: { display: true, text: "training labels" },
      };
    }
    fixScoreAxis(this.canvas(panel), false);
    chart.update();
  }

  private canvas(panel: ChartPanel): HTMLCanvasElement {
    return panel.element.querySelector("canvas") as HTMLCanvasElement;
  }

  private summaries(): Record<string, ChartSummary | null> {
    const out: Record<string, ChartSummary | null> = {};
    for (const panel of Object.values(this.panels)) {
      const canvas = this.canvas(panel);
      const key = canvas.dataset.testid?.replace("chart-", "") ?? "";
      const chart = Chart.getChart(canvas);
      out[key] = chart
        ? {
            type: String((chart.config as { type?: string }).type),
            xScale: chart.scales.x?.type,
            labels: [...(chart.data.labels ?? [])],
            datasets: chart.data.datasets.map((d) => ({
              label: String(d.label),
              data: [...d.data],
              pointRadius: (d as { pointRadius?: unknown }).pointRadius ?? null,
            })),
          }
        : null;
    }
    return out;
  }

  private setState(state: "loading" | "ready" | "error"): void {
    this.root.dataset.state = state;
    this.root.setAttribute("aria-busy", String(state === "loading"));
  }
}

/** Validation scores lie in [0, 1]: a fixed axis compares versions and classes at a glance. */
function fixScoreAxis(canvas: HTMLCanvasElement, update = true): void {
  const chart = Chart.getChart(canvas);
  const y = chart?.options.scales?.y;
  if (!chart || !y) return;
  Object.assign(y, { min: 0, max: 1 });
  if (update) chart.update();
}

function required(root: HTMLElement, selector: string): HTMLElement {
  const el = root.querySelector<HTMLElement>(selector);
  if (!el) throw new Error(`The Models page has no ${selector}.`);
  return el;
}
