/** The model owner's page (frontend/templates/frontend/models.html): retraining cycles followed
 * live, the registry of model versions, promote and roll back (asking first). Everything is read
 * and done through the REST API (shared/api.ts, addresses from shared/urls.ts). */

import { Api } from "../shared/api";
import { h } from "../shared/dom";
import { apiUrls } from "../shared/urls";
import { askToChange, type ChangeAction } from "./confirm";
import {
  FIGURE_NAMES,
  METRICS,
  cycleSeconds,
  decisionLines,
  duration,
  etaText,
  figure,
  figureText,
  frocLine,
  isActive,
  previousServing,
  shownStatus,
  stageText,
  validationLabels,
  when,
  withdrawnFlag,
  withinText,
} from "./format";
import type { Cycle, ModelVersion, ModelsConfig, Project, Strategy } from "./types";

const POLL_ACTIVE_MS = 1000; // a running cycle: its progress every second
const POLL_IDLE_MS = 15000; // otherwise: notice cycles started elsewhere (automatic trigger)
const LOG_LINES = 6;
const RECENT_CYCLES = 8;

function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const node = document.getElementById(id);
  if (!node) throw new Error(`The Models page has no #${id}.`);
  return node as T;
}

const optional = <T extends HTMLElement = HTMLElement>(id: string): T | null =>
  document.getElementById(id) as T | null;

function badge(status: string, text = status): HTMLSpanElement {
  return h("span", { text, class: `badge ${status}`, "data-status": status });
}

function fact(id: string, text: string): void {
  const node = byId(id);
  node.textContent = text;
  node.hidden = !text;
}

export class ModelsPage {
  private readonly api: Api;
  private project: Project | null = null;
  private versions: ModelVersion[] = [];
  private cycles: Cycle[] = [];
  private cycle: Cycle | null = null;
  private strategies: Record<string, string> = {};
  private rollbackTo: ModelVersion | null = null;
  private timer = 0;
  // Answers about the cycle are applied in the order they were asked: a slow older answer
  // (the list, polled while the cycle's own address answered) never undoes a newer one.
  private asked = 0;
  private applied = 0;
  // What the charts draw from: versions and finished cycles.
  private drawnFrom: string | null = null;

  constructor(
    private readonly config: ModelsConfig,
    /** Called when a cycle finished or a version was registered, promoted or rolled back. */
    private readonly onChanged: () => void = () => {},
  ) {
    this.api = new Api(config.csrfToken);
  }

  async start(): Promise<void> {
    this.wire();
    void this.loadStrategies();
    await this.refresh();
    byId("models-page").dataset.state = "ready";
  }

  // --- alert ------------------------------------------------------------------------------

  private showError(error: unknown): void {
    byId("alert-message").textContent = error instanceof Error ? error.message : String(error);
    byId("alert").hidden = false;
  }

  private clearError(): void {
    byId("alert").hidden = true;
    byId("alert-message").textContent = "";
  }

  // --- rendering --------------------------------------------------------------------------

  private serving(): ModelVersion | null {
    return this.versions.find((v) => v.status === "promoted") ?? null;
  }

  private renderProject(): void {
    const project = this.project;
    if (!project) return;
    byId("project-name").textContent = project.name;
    const strategy = byId("setting-strategy");
    strategy.querySelector("b")!.textContent = project.acquisition_strategy;
    strategy.title = this.strategies[project.acquisition_strategy] ?? "";
    byId("setting-metric").querySelector("b")!.textContent = project.promotion_metric;
    byId("setting-auto-promote").querySelector("b")!.textContent = project.auto_promote ? "on" : "off";
    for (const th of document.querySelectorAll<HTMLElement>("#versions th[data-metric]")) {
      const primary = th.dataset.metric === project.promotion_metric;
      th.classList.toggle("primary", primary);
      th.title = primary ? "The promotion metric" : "";
    }
  }

  private renderCycle(): void {
    const cycle = this.cycle;
    const active = isActive(cycle);
    const retrain = optional<HTMLButtonElement>("retrain");
    if (retrain) {
      retrain.disabled = active;
      retrain.title = active ? "A retraining cycle is running" : "Train a new version now";
    }
    for (const again of document.querySelectorAll<HTMLButtonElement>("[data-testid=retrain-without-withdrawn]")) {
      again.disabled = active;
    }
    byId("cycle-empty").hidden = Boolean(cycle);
    byId("cycle-body").hidden = !cycle;
    byId("cycle-status").hidden = !cycle;
    byId("cycle-cancel").hidden = !(cycle && active && this.config.canChange);
    if (!cycle) {
      byId("cycle-title").textContent = "Retraining";
      byId("cycle-stage").textContent = "";
      return;
    }
    byId("cycle-title").textContent = `Cycle ${cycle.id}`;
    const status = byId("cycle-status");
    const shown = shownStatus(cycle);
    status.textContent = shown;
    status.className = `badge ${shown}`;
    status.dataset.status = shown;
    byId("cycle-stage").textContent = stageText(cycle);

    const progress = Math.min(Math.max(Number(cycle.progress) || 0, 0), 100);
    const bar = byId("cycle-progress");
    bar.className = `bar ${cycle.status}`;
    bar.setAttribute("aria-valuenow", String(progress));
    bar.querySelector<HTMLElement>(".fill")!.style.width = `${progress}%`;
    bar.querySelector(".label")!.textContent = `${Math.round(progress)} %`;

    const took = duration(cycleSeconds(cycle));
    const elapsed: Record<string, string> = {
      queued: `waiting for a worker (${took})`,
      running: `running for ${took}`,
    };
    fact("cycle-labels", cycle.label_count ? `${cycle.label_count} labels` : "");
    fact("cycle-within", withinText(cycle));
    fact("cycle-elapsed", elapsed[shownStatus(cycle)] ?? `took ${took}`);
    fact("cycle-eta", active ? etaText(cycle) : "");
    byId("cycle-eta").title = active && cycle.estimate ? cycle.estimate.basis : "";
    fact("cycle-made", cycle.model_version_number ? `made v${cycle.model_version_number}` : "");
    // Log lines start with the date: the time is enough here.
    const lines = (cycle.log ?? []).slice(-LOG_LINES).map((line) => line.replace(/^\d{4}-\d\d-\d\d /, ""));
    if (cycle.status === "failed" && cycle.error) lines.push(`error: ${cycle.error}`);
    const log = byId("cycle-log");
    log.textContent = lines.join("\n");
    log.scrollTop = log.scrollHeight;
  }

  private renderCycles(): void {
    const rows = this.cycles.slice(0, RECENT_CYCLES).map((cycle) => {
      const by = cycle.trigger === "manual" && cycle.triggered_by ? ` · ${cycle.triggered_by}` : "";
      const made = cycle.model_version_number ? `v${cycle.model_version_number}` : "—";
      const took = isActive(cycle) ? "…" : duration(cycleSeconds(cycle));
      return h(
        "tr",
        { "data-cycle": cycle.id },
        h("td", { text: `#${cycle.id}`, title: `queued ${when(cycle.created_at)}` }),
        h("td", {}, badge(shownStatus(cycle))),
        h("td", { text: `${cycle.trigger}${by}`, class: "trigger" }),
        h("td", { text: made }),
        h("td", { text: took, class: "num" }),
      );
    });
    document.querySelector("#cycles tbody")?.replaceChildren(...rows);
    byId("cycles-empty").hidden = rows.length > 0;
  }

  private renderVersions(): void {
    const serving = this.serving();
    byId("setting-serving").querySelector("b")!.textContent = serving ? `v${serving.number}` : "none";
    const notes: string[] = [];
    const rows = this.versions.flatMap((version) => {
      const isServing = version.status === "promoted";
      const status = badge(version.status, isServing ? "serving" : version.status);
      if (isServing) status.title = `promoted ${when(version.promoted_at)}`;
      const metrics = METRICS.map((path) => {
        const { value, missing } = figure(version, path);
        const cell = h("td", { text: figureText(value), class: "num", "data-metric": path });
        if (value === null) {
          // "—" never stands alone: a note under the table says why.
          notes.push(`v${version.number} ${FIGURE_NAMES[path]} —: ${missing}`);
          cell.title = missing;
          cell.append(h("sup", { text: String(notes.length), class: "note-ref" }));
        }
        return cell;
      });
      const actions = h("td", { class: "actions" });
      if (this.config.canChange && !isServing && version.status !== "failed") {
        const promote = h("button", { text: "Promote", class: "small", type: "button", "data-testid": "promote" });
        promote.addEventListener("click", () => this.confirmChange("promote", version, promote));
        actions.append(promote);
      }
      const statusCell = h("td", {}, status);
      const withdrawn = withdrawnFlag(version);
      if (withdrawn) {
        const flag = badge("withdrawn", withdrawn.text);
        flag.title = withdrawn.title;
        flag.dataset.testid = "withdrawn-flag";
        statusCell.append(" ", flag);
        if (this.config.canChange) {
          // One click: a new cycle, whose label snapshot leaves the withdrawn patients out.
          const again = h("button", {
            text: "Retrain without them",
            class: "small",
            type: "button",
            "data-testid": "retrain-without-withdrawn",
          });
          again.disabled = isActive(this.cycle);
          again.title = again.disabled ? "A retraining cycle is running" : withdrawn.title;
          again.addEventListener("click", () => void this.retrain(again));
          actions.append(again);
        }
      }
      const labels = validationLabels(version);
      const row = h(
        "tr",
        { "data-version": version.number },
        h("td", { text: `v${version.number}` }),
        statusCell,
        h("td", { text: String(version.label_count), class: "num", "data-testid": "label-count" }),
        h("td", { text: version.strategy || "—" }),
        h("td", {
          text: labels === null ? "—" : String(labels),
          class: "num",
          "data-testid": "validation-labels",
        }),
        ...metrics,
        h("td", { text: when(version.created_at) }),
        actions,
      );
      const sha = (version.weights_sha256 ?? "").slice(0, 12);
      row.title = `${version.model_kind} · ${version.code_version} · sha256 ${sha}`;
      row.classList.toggle("serving", isServing);
      const lines = decisionLines(version, this.versions);
      const decision = h(
        "td",
        { colspan: "10", "data-testid": "decision" },
        h("span", { text: "Promotion check: " }),
        h("b", { text: lines.verdict }),
      );
      if (lines.inputs.length) decision.append(h("span", { text: ` · ${lines.inputs.join(" · ")}` }));
      if (lines.reason) decision.title = lines.reason;
      const decisionRow = h("tr", { class: "decision", "data-decision": version.number }, decision);
      decisionRow.classList.toggle("serving", isServing);
      const froc = frocLine(version);
      if (!froc) return [row, decisionRow];
      // A 3D version's FROC (LUNA16's rates) under its promotion check.
      const frocRow = h(
        "tr",
        { class: "decision froc", "data-froc": version.number },
        h("td", { colspan: "10", "data-testid": "froc", text: froc }),
      );
      frocRow.classList.toggle("serving", isServing);
      return [row, decisionRow, frocRow];
    });
    document.querySelector("#versions tbody")?.replaceChildren(...rows);
    byId("versions-empty").hidden = rows.length > 0;
    const figureNotes = byId("figure-notes");
    figureNotes.replaceChildren(...notes.map((text) => h("li", { text })));
    figureNotes.hidden = notes.length === 0;

    const rollback = optional<HTMLButtonElement>("rollback");
    if (rollback) {
      const previous = previousServing(this.versions, serving);
      rollback.disabled = !previous || !serving;
      rollback.textContent = previous && serving ? `Roll back to v${previous.number}` : "Roll back";
      this.rollbackTo = previous && serving ? previous : null;
    }
  }

  private renderAll(): void {
    this.renderProject();
    this.renderVersions();
    this.renderCycles();
    this.renderCycle();
  }

  private confirmChange(action: ChangeAction, target: ModelVersion, button: HTMLButtonElement): void {
    const metric = this.project?.promotion_metric ?? "";
    const projectId = this.config.projectId;
    askToChange(action, target, this.serving(), metric, () => {
      if (action === "promote") void this.act(button, apiUrls.promote(projectId, target.number));
      else void this.act(button, apiUrls.rollback(projectId), { to: target.number });
    });
  }

  // --- loading and polling ----------------------------------------------------------------

  /** A cycle finished, or a version was registered, promoted or rolled back: the charts load
   * their numbers again. */
  private announceChanges(): void {
    const signature = JSON.stringify([
      this.versions.map((v) => [v.number, v.status]),
      this.cycles.filter((c) => !isActive(c)).map((c) => [c.id, c.status]),
    ]);
    if (this.drawnFrom !== null && signature !== this.drawnFrom) this.onChanged();
    this.drawnFrom = signature;
  }

  private schedule(): void {
    window.clearTimeout(this.timer);
    const active = isActive(this.cycle);
    this.timer = window.setTimeout(
      () => void (active ? this.pollCycle() : this.refresh()),
      active ? POLL_ACTIVE_MS : POLL_IDLE_MS,
    );
  }

  private async refresh(): Promise<void> {
    const ticket = ++this.asked;
    const projectId = this.config.projectId;
    try {
      const [project, versions, cycles] = await Promise.all([
        this.api.get<Project>(apiUrls.project(projectId)),
        this.api.get<ModelVersion[]>(apiUrls.modelVersions(projectId)),
        this.api.get<Cycle[]>(apiUrls.cycles(projectId)),
      ]);
      this.project = project.data;
      this.versions = versions.data;
      this.cycles = cycles.data;
      // The panel follows the active cycle, else shows how the newest one ended; an answer
      // older than the one shown leaves the panel as it is.
      if (ticket > this.applied) {
        this.applied = ticket;
        this.cycle = this.cycles.find(isActive) ?? this.cycles[0] ?? null;
      }
      this.renderAll();
      this.announceChanges();
    } catch (error) {
      this.showError(error);
    }
    this.schedule();
  }

  private async pollCycle(): Promise<void> {
    const known = this.cycle;
    if (!known) return this.refresh();
    const ticket = ++this.asked;
    try {
      const cycle = (await this.api.get<Cycle>(apiUrls.cycle(known.id))).data;
      if (ticket > this.applied) {
        this.applied = ticket;
        this.cycle = cycle;
        // The row of Recent cycles follows too: never "queued" there while it trains.
        this.cycles = this.cycles.map((c) => (c.id === cycle.id ? cycle : c));
        this.renderCycle();
        this.renderCycles();
      }
      if (!isActive(cycle) || cycle.model_version_number !== known.model_version_number) {
        await this.refresh(); // finished, or registered a version: the tables change
        return;
      }
    } catch (error) {
      this.showError(error);
    }
    this.schedule();
  }

  private async loadStrategies(): Promise<void> {
    try {
      const items = (await this.api.get<Strategy[]>(apiUrls.strategies())).data;
      this.strategies = Object.fromEntries(items.map((s) => [s.name, s.description]));
      this.renderProject();
    } catch {
      // Only the strategy's description (a tooltip) depends on it.
    }
  }

  // --- actions ----------------------------------------------------------------------------

  private async act(button: HTMLButtonElement, address: string, body?: unknown): Promise<void> {
    button.disabled = true;
    this.clearError();
    try {
      await this.api.post(address, body);
    } catch (error) {
      this.showError(error);
    } finally {
      button.disabled = false;
      await this.refresh();
    }
  }

  private async retrain(button?: HTMLButtonElement): Promise<void> {
    for (const node of [optional<HTMLButtonElement>("retrain"), button]) if (node) node.disabled = true;
    this.clearError();
    const ticket = ++this.asked;
    try {
      const cycle = (await this.api.post<Cycle>(apiUrls.cycles(this.config.projectId))).data;
      if (ticket > this.applied) {
        this.applied = ticket;
        this.cycle = cycle;
        this.renderCycle();
      }
    } catch (error) {
      this.showError(error);
    }
    await this.refresh();
  }

  private wire(): void {
    byId("alert-close").addEventListener("click", () => this.clearError());
    optional("retrain")?.addEventListener("click", () => void this.retrain());
    const rollback = optional<HTMLButtonElement>("rollback");
    rollback?.addEventListener("click", () => {
      if (this.rollbackTo) this.confirmChange("rollback", this.rollbackTo, rollback);
    });
    const cancel = byId<HTMLButtonElement>("cycle-cancel");
    cancel.addEventListener("click", () => {
      if (this.cycle) void this.act(cancel, apiUrls.cancelCycle(this.cycle.id));
    });
  }
}
