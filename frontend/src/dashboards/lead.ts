/** The project lead's dashboard (frontend/templates/frontend/dashboard.html): number tiles, then
 * the queue's charts and the annotators' charts over a window of 7, 30 or 90 days. Vite's entry
 * src/dashboards/lead.ts; the numbers come from /api/projects/{id}/dashboard/{queue,throughput,
 * review}/. ``#dashboard[data-state]`` is loading, ready or error, ``[data-days]`` the window
 * shown. */

import "./dashboard.css";
import { Api } from "../shared/api";
import { h } from "../shared/dom";
import { apiUrls } from "../shared/urls";
import { type Agreement, agreementSeries, agreementTiles } from "./agreement";
import { followPageColors } from "./charts";
import { ChartPanel, type PanelSpec } from "./panel";
import * as shape from "./shape";
import type { DashboardConfig, QueueDashboard, ReviewDashboard, ThroughputDashboard } from "./types";

const QUEUE_PANELS = {
  states: { key: "queue-states", kind: "stacked-hbar", rowHeader: "Cases", emptyText: "No cases yet." },
  burnDown: { key: "burn-down", kind: "line", rowHeader: "Day", emptyText: "Nothing left to read." },
  review: { key: "review", kind: "stacked-hbar", rowHeader: "Annotator", emptyText: "No submissions yet." },
  agreement: {
    key: "agreement",
    kind: "bar",
    rowHeader: "Finding",
    emptyText: "No double-read case has both reads yet.",
    axisTitle: "kappa / F1",
  },
} satisfies Record<string, PanelSpec>;

const THROUGHPUT_PANELS = {
  daily: { key: "daily", kind: "stacked-bar", rowHeader: "Day", emptyText: "No submissions in this window." },
  median: {
    key: "median-minutes",
    kind: "bar",
    rowHeader: "Annotator",
    emptyText: "No case first submitted in this window.",
    axisTitle: "minutes",
  },
  suggestions: {
    key: "suggestions",
    kind: "stacked-hbar",
    rowHeader: "Annotator",
    emptyText: "No boxes in this window.",
  },
} satisfies Record<string, PanelSpec>;

class LeadDashboard {
  private readonly api: Api;
  private readonly queue = mapValues(QUEUE_PANELS, (spec) => new ChartPanel(spec));
  private readonly throughput = mapValues(THROUGHPUT_PANELS, (spec) => new ChartPanel(spec));
  private readonly tiles: HTMLElement;
  private readonly alert: HTMLElement;
  private days: number;
  private throughputRequest = 0;

  constructor(
    private readonly root: HTMLElement,
    private readonly config: DashboardConfig,
  ) {
    this.api = new Api(config.csrfToken);
    this.days = config.days;
    this.tiles = required(root, "#tiles");
    this.alert = required(root, "#alert");
    const charts = required(root, "#charts");
    // Queue first row, annotators' window second: the eye reads state, then who moved it.
    charts.replaceChildren(
      this.queue.states.element,
      this.queue.burnDown.element,
      this.queue.review.element,
      this.throughput.daily.element,
      this.throughput.median.element,
      this.throughput.suggestions.element,
      this.queue.agreement.element,
    );
    for (const input of root.querySelectorAll<HTMLInputElement>("input[name=days]")) {
      input.checked = Number(input.value) === this.days;
      input.addEventListener("change", () => void this.changeDays(Number(input.value)));
    }
    followPageColors(root);
  }

  async start(): Promise<void> {
    this.setState("loading");
    try {
      const [queue, review, agreement] = await Promise.all([
        this.get<QueueDashboard>(apiUrls.queueDashboard(this.config.projectId)),
        this.get<ReviewDashboard>(apiUrls.reviewDashboard(this.config.projectId)),
        this.get<Agreement>(apiUrls.agreement(this.config.projectId)),
        this.loadThroughput(this.days),
      ]);
      this.showTiles(queue, review, agreement);
      this.queue.agreement.show(
        `Agreement between readers · ${agreement.cases} double-read cases`,
        agreementSeries(agreement, this.config.findings),
      );
      this.queue.states.show("Cases by state", shape.queueStates(queue));
      this.queue.burnDown.show("Burn-down: cases still needing reads", shape.burnDown(queue));
      this.queue.review.show("Review queue per annotator", shape.reviewLoad(review));
      this.setState("ready");
    } catch (err) {
      this.fail(err);
    }
  }

  private async changeDays(days: number): Promise<void> {
    this.days = days;
    const url = new URL(window.location.href);
    url.searchParams.set("days", String(days));
    window.history.replaceState(null, "", url);
    this.setState("loading");
    try {
      if (await this.loadThroughput(days)) this.setState("ready");
    } catch (err) {
      this.fail(err);
    }
  }

  /** Fetch and draw the annotators' charts; false when a later choice of window overtook it. */
  private async loadThroughput(days: number): Promise<boolean> {
    const request = ++this.throughputRequest;
    const data = await this.get<ThroughputDashboard>(apiUrls.throughputDashboard(this.config.projectId, days));
    if (request !== this.throughputRequest) return false;
    const span = `${data.days} days`;
    this.throughput.daily.show(`Submissions per day · ${span}`, shape.dailySubmissions(data));
    this.throughput.median.show(`Median minutes per case · ${span}`, shape.medianMinutes(data));
    this.throughput.suggestions.show(`Use of suggested boxes · ${span}`, shape.suggestionUse(data));
    this.root.dataset.days = String(data.days);
    return true;
  }

  private showTiles(queue: QueueDashboard, review: ReviewDashboard, agreement: Agreement): void {
    const all = [...shape.tiles(queue, review, Date.now()), ...agreementTiles(agreement)];
    this.tiles.replaceChildren(
      ...all.map((tile) =>
        h(
          "div",
          { class: `tile ${tile.tone ?? ""}`, "data-tile": tile.key },
          h("span", { class: "label", text: tile.label }),
          h("span", { class: "value", "data-testid": `tile-${tile.key}`, text: tile.value }),
          h("span", { class: "detail", title: tile.detail, text: tile.detail }),
        ),
      ),
    );
  }

  private async get<T>(path: string): Promise<T> {
    return (await this.api.request<T>("GET", path)).data;
  }

  private setState(state: "loading" | "ready" | "error"): void {
    this.root.dataset.state = state;
    this.root.setAttribute("aria-busy", String(state === "loading"));
  }

  private fail(err: unknown): void {
    console.error(err);
    this.alert.textContent = `The dashboard could not load: ${err instanceof Error ? err.message : String(err)}`;
    this.alert.hidden = false;
    this.setState("error");
  }
}

function mapValues<K extends string, A, B>(record: Record<K, A>, f: (a: A) => B): Record<K, B> {
  const out = {} as Record<K, B>;
  for (const key of Object.keys(record) as K[]) out[key] = f(record[key]);
  return out;
}

function required(root: HTMLElement, selector: string): HTMLElement {
  const el = root.querySelector<HTMLElement>(selector);
  if (!el) throw new Error(`The dashboard page has no ${selector}.`);
  return el;
}

function main(): void {
  const root = document.getElementById("dashboard");
  const script = document.getElementById("dashboard-config");
  if (!root || !script?.textContent) return;
  const config = JSON.parse(script.textContent) as DashboardConfig;
  void new LeadDashboard(root, config).start();
}

main();
