/** Annotate mode: the queue flow (lease next case, prefetch the one after, submit, skip), the
 * viewer in sync with the box list, findings, report, autosave and stale-draft handling. */

import { createViewer, DEFAULT_PRESETS, type ViewerBox, type ViewerHandle, type ViewerImage } from "../viewer";
import { Activity } from "./activity";
import { Api, ApiError } from "../shared/api";
import { apiUrls, query } from "../shared/urls";
import { DraftSaver } from "./autosave";
import { Banners } from "./banner";
import { CommandRegistry } from "./commands";
import { helpBody, openDialog, promptText } from "./dialogs";
import { h } from "../shared/dom";
import { Explanations } from "./explain";
import { loadImages } from "./images";
import { annotateBindings } from "./keymap";
import { buildLayout, type Layout } from "./layout";
import { renderBoxes } from "./panels/boxes";
import { renderContext } from "./panels/context";
import { renderFindings } from "./panels/findings";
import { renderModelStatus } from "./panels/model";
import { renderReport, type ReportPanel } from "./panels/report";
import { showCompare } from "./compare";
import { Timings } from "./timings";
import { buildViewerToolbar, togglePlanes } from "./toolbar";
import type {
  Annotation,
  CaseDetail,
  FindingState,
  LeasedCase,
  ReportLink,
  ServedSuggestion,
  Suggestion,
  WorkspaceConfig,
} from "./types";
import { noPendingText } from "./suggestions";
import { SUGGESTION_PREFIX, WorkState } from "./work";

/** A leased case, the suggestion the server lets the workspace show, and what it held back. */
type Bundle = {
  case: LeasedCase;
  suggestion: Suggestion | null;
  served: ServedSuggestion | null;
  /** The case's images as the viewer shows them (a CT/MR series as one stack). */
  images: ViewerImage[];
};

const LEASE_RENEW_MS = 4 * 60 * 1000;

export class AnnotateWorkspace {
  private layout!: Layout;
  private viewer!: ViewerHandle;
  private banners!: Banners;
  private readonly commands = new CommandRegistry();
  private readonly timings = new Timings();
  private current: Bundle | null = null;
  private next: Bundle | null = null;
  private nextLoading: Promise<void> | null = null;
  private work: WorkState | null = null;
  private saver: DraftSaver | null = null;
  private reportPanel: ReportPanel | null = null;
  private activeFinding: string;
  private busy = false;
  private saveState!: HTMLElement;
  private explanations!: Explanations;
  private heatmapToggles = 0;

  constructor(
    private readonly app: HTMLElement,
    private readonly config: WorkspaceConfig,
    private readonly api: Api,
  ) {
    this.activeFinding = config.schema.findings[0]?.key ?? "";
  }

  async start(): Promise<void> {
    this.layout = buildLayout(this.app, "annotate");
    this.banners = new Banners(this.layout.banners);
    this.viewer = await createViewer(this.layout.viewer, this.layout.thumbnails);
    this.explanations = new Explanations(this.api, this.viewer);
    this.registerCommands();
    this.buildToolbar();
    this.wireViewer();
    this.wirePage();
    const resumed = await this.resume();
    if (resumed) await this.open(resumed).catch((err: unknown) => this.showError(err));
    else await this.openNext(null);
  }

  /** In localStorage, shared by the user's tabs: a new tab reopens the case last opened. */
  private get currentKey(): string {
    return `medloop:current-case:${this.config.username}:${this.config.projectId}`;
  }

  /** After a reload, or in a new tab, reopen the case the annotator was on (they may also hold
   * the prefetched one, and next-case would hand back the lower id of the two). */
  private async resume(): Promise<Bundle | null> {
    const id = Number(localStorage.getItem(this.currentKey));
    if (!id) return null;
    try {
      const detail = await this.api.get<CaseDetail>(apiUrls.case(id));
      const c = detail.data;
      const leaseValid = c.lease_expires_at && new Date(c.lease_expires_at).getTime() > Date.now();
      if (c.leased_to !== this.config.username || !leaseValid) return null;
      const [annotation, served] = await Promise.all([
        this.api.get<Annotation>(apiUrls.caseAnnotation(id)),
        this.api.get<ServedSuggestion>(apiUrls.caseSuggestion(id)),
        this.api.put(apiUrls.caseLease(id)),
      ]);
      if (!["draft", "returned"].includes(annotation.data.status)) return null;
      return {
        case: { ...c, annotation: { ...annotation.data, etag: annotation.etag ?? annotation.data.etag } },
        suggestion: served.data?.suggestion ?? null,
        served: served.data ?? null,
        images: await loadImages(this.api, c),
      };
    } catch {
      return null; // not resumable (released, submitted, gone): take the queue's next case
    }
  }

  // --- queue flow ---------------------------------------------------------------------------

  /** Lease the queue's next case; ``known`` (the prefetched case) is reused as it is, images
   * and suggestion already loaded, when the server hands it back. */
  private async lease(exclude: number[], known: Bundle | null = null): Promise<Bundle | null> {
    const search = query({ exclude: exclude.join(",") });
    const response = await this.api.post<LeasedCase>(
      apiUrls.nextCase(this.config.projectId, search),
    );
    if (response.status === 204 || !response.data) return null;
    if (known && response.data.id === known.case.id) return known;
    // The server cuts the suggestion to what its version's validation evidence supports (and
    // records what it served on this annotator's annotation).
    const [served, images] = await Promise.all([
      this.api.get<ServedSuggestion>(apiUrls.caseSuggestion(response.data.id)),
      loadImages(this.api, response.data),
    ]);
    return {
      case: response.data,
      suggestion: served.data?.suggestion ?? null,
      served: served.data ?? null,
      images,
    };
  }

  /** Open the prefetched case if there is one, else lease one; `t0` starts the render timer.
   * `askQueue`: work a reviewer returned may be waiting, which the queue hands out before the
   * prefetched case, so ask it (the prefetched case is reused when it is the answer). */
  private async openNext(t0: number | null, askQueue = false): Promise<void> {
    try {
      if (this.nextLoading) await this.nextLoading;
      let bundle = this.next;
      this.next = null;
      if (bundle && !askQueue) {
        // The prefetched lease may have lapsed while the previous case was worked on.
        void this.api.put(apiUrls.caseLease(bundle.case.id)).catch((err: unknown) => {
          this.showError(err);
        });
      } else {
        // Asking renews the prefetched lease when it is the answer; when another case comes
        // first, the prefetch after it asks the queue again.
        bundle = await this.lease([], bundle);
      }
      if (!bundle) {
        this.showEmpty();
        return;
      }
      if (t0 !== null) this.timings.expect(bundle.case.id, t0);
      await this.open(bundle);
    } catch (err) {
      this.showError(err);
    }
  }

  private async prefetchNext(): Promise<void> {
    if (!this.current || this.next) return;
    const currentId = this.current.case.id;
    this.nextLoading = (async () => {
      try {
        const bundle = await this.lease([currentId]);
        if (!bundle || this.current?.case.id !== currentId) return;
        this.next = bundle;
        await this.viewer.prefetch(bundle.images);
      } catch (err) {
        // Prefetch is an optimisation: say so, but keep working.
        const message = err instanceof ApiError ? err.message : String(err);
        this.banners.show("prefetch", "info", `The next case could not be prefetched: ${message}`);
      } finally {
        this.nextLoading = null;
      }
    })();
    await this.nextLoading;
  }

  private async open(bundle: Bundle): Promise<void> {
    this.saver?.dispose();
    this.explanations.reset();
    this.current = bundle;
    const c = bundle.case;
    localStorage.setItem(this.currentKey, String(c.id));
    const annotation = c.annotation;
    this.work = new WorkState(this.config.schema);
    this.work.load(annotation, bundle.suggestion);
    this.saver = new DraftSaver(this.api, c.id, annotation.etag, () => this.work!.content(), {
      onState: (state, detail) => this.setSaveState(state, detail),
      onSaved: () => this.banners.hide("error"),
      onStale: () => this.showStale(),
      onError: (err) => this.showError(err),
    });
    this.setSaveState("saved");
    this.banners.clearAll();
    if (annotation.status === "returned") {
      this.banners.show(
        "returned",
        "warning",
        `Returned by ${annotation.reviewed_by ?? "a reviewer"}: ${annotation.review_comment || "(no comment)"}`,
      );
    }
    this.layout.caseInfo.replaceChildren(
      h("strong", { text: this.config.projectName }),
      ` · Case ${c.id} · ${c.patient}`,
      h("span", { class: "badge", text: annotation.status }),
      ...(bundle.suggestion
        ? [h("span", { class: "badge model", text: `model v${bundle.suggestion.model_version}` })]
        : []),
    );
    this.layout.left.replaceChildren(renderContext(c));
    this.renderRight();
    await this.viewer.setImages(bundle.images);
    this.syncViewerBoxes();
    void this.prefetchNext();
  }

  private showEmpty(): void {
    this.saver?.dispose();
    this.explanations.reset();
    localStorage.removeItem(this.currentKey);
    this.current = null;
    this.work = null;
    this.viewer.setBoxes([]);
    void this.viewer.setImages([]).catch(() => undefined);
    this.layout.caseInfo.replaceChildren(h("strong", { text: this.config.projectName }), " · queue empty");
    this.layout.left.replaceChildren();
    this.layout.right.replaceChildren(
      h(
        "section",
        { class: "panel empty", id: "queue-empty" },
        h("h2", { text: "Nothing left to label" }),
        h("p", { text: "The queue holds no more cases for you. Thank you!" }),
        h("a", { href: "/", text: "Back to projects" }),
      ),
    );
  }

  private async submit(): Promise<void> {
    if (!this.current || !this.saver || !this.work || this.busy) return;
    if (this.saver.stale) {
      this.showStale();
      return;
    }
    this.busy = true;
    const t0 = performance.now();
    const c = this.current.case;
    try {
      await this.saver.settle();
      const submitted = await this.api.post<Annotation & { returned_waiting?: number[] }>(
        apiUrls.caseSubmit(c.id),
        this.work.content(),
        this.saver.etag,
      );
      this.saver.dispose();
      const returned = submitted.data.returned_waiting ?? [];
      await this.openNext(t0, returned.some((id) => id !== this.next?.case.id));
    } catch (err) {
      if (err instanceof ApiError && err.status === 412) {
        this.saver.stale = true;
        this.setSaveState("stale");
        this.showStale();
      } else {
        this.showError(err);
      }
    } finally {
      this.busy = false;
    }
  }

  private async skip(): Promise<void> {
    if (!this.current || this.busy) return;
    const c = this.current.case;
    const reason = await promptText(`Skip case ${c.id}`, "Why are you skipping this case?", "Skip case");
    if (!reason) return;
    this.busy = true;
    try {
      this.saver?.dispose(); // a skipped case is given back: no draft save may re-lease it
      await this.api.post(apiUrls.caseSkip(c.id), { reason });
      await this.openNext(performance.now(), true);
    } catch (err) {
      this.showError(err);
    } finally {
      this.busy = false;
    }
  }

  // --- stale drafts (412) ------------------------------------------------------------------

  private showStale(): void {
    this.banners.show(
      "stale",
      "warning",
      "This draft was changed elsewhere (another tab or session) since you loaded it. " +
        "Autosave is paused; your changes here are kept until you choose.",
      [
        { label: "Reload", id: "stale-reload", run: () => void this.reloadFromServer() },
        { label: "Compare", id: "stale-compare", run: () => void this.compare() },
      ],
      false,
    );
  }

  private async fetchServerAnnotation(): Promise<Annotation> {
    const c = this.current!.case;
    const response = await this.api.get<Annotation>(apiUrls.caseAnnotation(c.id));
    return { ...response.data, etag: response.etag ?? response.data.etag };
  }

  private async reloadFromServer(): Promise<void> {
    if (!this.current || !this.work || !this.saver) return;
    try {
      const server = await this.fetchServerAnnotation();
      this.current.case.annotation = server;
      this.work.load(server, this.current.suggestion);
      this.saver.reset(server.etag);
      this.banners.hide("stale");
      this.renderRight();
      this.syncViewerBoxes();
      this.banners.show("reloaded", "info", `Reloaded the server's version ${server.version}.`);
    } catch (err) {
      this.showError(err);
    }
  }

  private async compare(): Promise<void> {
    if (!this.current || !this.work || !this.saver) return;
    try {
      const server = await this.fetchServerAnnotation();
      showCompare(this.config.schema, server, this.work.content(), {
        reload: () => void this.reloadFromServer(),
        keepMine: async () => {
          this.banners.hide("stale");
          await this.saver!.overwrite(server.etag);
        },
      });
    } catch (err) {
      this.showError(err);
    }
  }

  // --- rendering ----------------------------------------------------------------------------

  private renderRight(): void {
    const work = this.work!;
    const bundle = this.current!;
    const editable = ["draft", "returned"].includes(bundle.case.annotation.status);
    this.reportPanel = renderReport(
      this.config.schema.report_sections,
      work.report,
      bundle.suggestion?.report_draft ?? {},
      editable ? () => this.changed() : null,
      bundle.suggestion
        ? {
            links: Explanations.links(bundle.suggestion),
            findings: this.config.schema.findings,
            showBox: (link) => this.traceToBox(link),
            showFinding: (key) => void this.toggleHeatmap(key, true),
          }
        : null,
    );
    this.layout.right.replaceChildren(
      ...[renderModelStatus(bundle.served)].filter((el): el is HTMLElement => el !== null),
      h("div", { class: "boxes-slot" }),
      h("div", { class: "findings-slot" }),
      this.reportPanel.element,
    );
    this.renderBoxes();
    this.renderFindings();
  }

  private renderBoxes(): void {
    const slot = this.layout.right.querySelector(".boxes-slot");
    if (!slot || !this.work) return;
    slot.replaceChildren(
      renderBoxes(this.work, this.config.schema.findings, {
        select: (id) => this.select(id),
        setFinding: (id, finding) => {
          this.work!.setFinding(id, finding);
          this.boxesChanged();
        },
        remove: (id) => {
          this.work!.deleteBox(id);
          this.boxesChanged();
        },
        accept: (id) => this.acceptSuggestion(id),
        reject: (id) => {
          this.work!.rejectSuggestion(id);
          this.boxesChanged(false);
        },
      }, false, noPendingText(this.current?.served ?? null, this.work.suggestion?.boxes.length ?? 0)),
    );
    slot.querySelector(".box-row.selected")?.scrollIntoView({ block: "nearest" });
  }

  private renderFindings(): void {
    const slot = this.layout.right.querySelector(".findings-slot");
    if (!slot || !this.work) return;
    const work = this.work;
    slot.replaceChildren(
      renderFindings(
        this.config.schema.findings,
        work.findings,
        this.current?.suggestion?.finding_probabilities ?? {},
        work.prefilledFindings,
        (key: string, state: FindingState) => {
          work.findings[key] = state;
          work.prefilledFindings.delete(key);
          this.renderFindings();
          (slot.querySelector(`[data-finding="${key}"] [data-state="${state}"]`) as HTMLElement | null)?.focus();
          this.changed();
        },
        this.current?.suggestion
          ? { shown: this.explanations.shown, toggle: (key) => void this.toggleHeatmap(key) }
          : null,
      ),
    );
  }

  // --- explanations -------------------------------------------------------------------------

  /** Toggles ``finding``'s Grad-CAM heatmap (``show``: never hides it). */
  private async toggleHeatmap(finding: string, show = false): Promise<void> {
    const bundle = this.current;
    if (!bundle?.suggestion) return;
    if (show && this.explanations.shown === finding) return;
    // The heatmap banner belongs to the latest toggle (an earlier one may still be waiting).
    const toggle = ++this.heatmapToggles;
    const current = () => toggle === this.heatmapToggles;
    try {
      const state = await this.explanations.toggle(bundle.case.id, bundle.suggestion, finding, (message) => {
        if (current()) this.banners.show("heatmap", "info", message);
      });
      const name = this.config.schema.findings.find((f) => f.key === finding)?.name ?? finding;
      if (current() && state === "empty") {
        this.banners.show("heatmap", "info", `The model's heatmap for ${name} is empty: no region of the image raises its score.`);
      } else if (current()) {
        this.banners.hide("heatmap");
      }
    } catch (err) {
      if (current()) this.banners.hide("heatmap");
      this.showError(err);
    }
    if (this.current === bundle) this.renderFindings();
  }

  /** The heatmap of the selected box's finding, else of the most probable shown finding, else
   * of the active class. */
  private heatmapForSelection(): void {
    const selected = this.work?.selectedId ? this.work.find(this.work.selectedId) : undefined;
    const probabilities = this.current?.suggestion?.finding_probabilities ?? {};
    const likeliest = Object.entries(probabilities).sort((a, b) => b[1] - a[1])[0]?.[0];
    // Without reliable probabilities (a model still learning) the class being drawn is used.
    const finding = selected?.finding || likeliest || this.activeFinding;
    if (finding) void this.toggleHeatmap(finding);
  }

  /** Selects the box a draft sentence came from: the pending suggestion, or the box made from
   * it when it was accepted; says so when it was rejected or deleted. */
  private traceToBox(link: ReportLink): void {
    if (!this.work || link.box_index === null) return;
    const id = `s${link.box_index}`;
    if (this.work.pendingSuggestions().some((s) => s.id === id)) {
      this.select(SUGGESTION_PREFIX + id);
      return;
    }
    const made = this.work.boxes.find((b) => b.suggestionBoxId === id);
    if (made) this.select(made.id);
    else this.banners.show("trace", "info", `The model's box ${id} for this sentence was rejected or deleted.`);
  }

  private syncViewerBoxes(): void {
    if (!this.work) return;
    const colors = new Map(this.config.schema.findings.map((f) => [f.key, f]));
    const boxes: ViewerBox[] = [
      ...this.work.boxes.map((b) => ({
        id: b.id,
        instanceId: b.instanceId,
        frame: b.frame,
        x: b.x,
        y: b.y,
        width: b.width,
        height: b.height,
        finding: b.finding,
        color: colors.get(b.finding)?.color ?? "#ffffff",
        kind: "drawn" as const,
        label: (colors.get(b.finding)?.name ?? b.finding) + (b.slices ? ` · slices ${b.slices[0]}–${b.slices[1]}` : ""),
        selected: this.work!.selectedId === b.id,
        ...(b.slices ? { slices: b.slices } : {}),
      })),
      ...this.work.pendingSuggestions().map((s) => ({
        id: SUGGESTION_PREFIX + s.id,
        instanceId: s.instance_id,
        frame: s.frame,
        x: s.x,
        y: s.y,
        width: s.width,
        height: s.height,
        finding: s.finding,
        color: colors.get(s.finding)?.color ?? "#ffffff",
        kind: "suggestion" as const,
        label:
          `${colors.get(s.finding)?.name ?? s.finding} ${s.score.toFixed(2)}` +
          (s.slices ? ` · slices ${s.slices[0]}–${s.slices[1]}` : ""),
        selected: this.work!.selectedId === SUGGESTION_PREFIX + s.id,
        ...(s.slices ? { slices: s.slices } : {}),
      })),
    ];
    this.viewer.setBoxes(boxes);
  }

  /** After any change of the boxes: list, viewer, and (if content changed) autosave. */
  private boxesChanged(contentChanged = true): void {
    this.renderBoxes();
    this.syncViewerBoxes();
    if (contentChanged) this.changed();
  }

  private changed(): void {
    this.saver?.changed();
  }

  private setSaveState(state: string, detail?: string): void {
    const text: Record<string, string> = {
      saved: "All changes saved",
      dirty: "Unsaved changes…",
      saving: "Saving…",
      stale: "Not saved: changed elsewhere",
      error: `Not saved: ${detail ?? "error"}`,
    };
    this.saveState.textContent = text[state] ?? state;
    this.saveState.dataset.state = state;
  }

  showError(err: unknown): void {
    const message =
      err instanceof ApiError
        ? `${err.message}${err.status ? ` (HTTP ${err.status})` : ""}`
        : `Unexpected error: ${String(err)}`;
    this.banners.error(message);
    console.error(err);
  }

  // --- selection and box actions ------------------------------------------------------------

  private select(id: string | null): void {
    if (!this.work) return;
    this.work.selectedId = id;
    if (id) {
      const item = this.work.find(id);
      if (item) {
        const instanceId = "instanceId" in item ? item.instanceId : item.instance_id;
        const shown = this.viewer.currentImage();
        if (!shown || shown.instanceId !== instanceId || shown.frame !== item.frame) {
          void this.viewer.showImage(instanceId, item.frame).then(() => this.viewer.selectBox(id));
        }
        const finding = item.finding;
        if (finding) this.setActiveFinding(finding, false);
      }
    }
    this.viewer.selectBox(id);
    this.renderBoxes();
    this.syncViewerBoxes();
  }

  private acceptSuggestion(suggestionId: string): void {
    if (!this.work) return;
    this.work.acceptSuggestion(suggestionId);
    this.boxesChanged();
  }

  private stepSelection(delta: number): void {
    if (!this.work) return;
    const ids = this.work.orderedIds();
    if (!ids.length) return;
    const at = this.work.selectedId ? ids.indexOf(this.work.selectedId) : -1;
    const nextIndex = at < 0 ? (delta > 0 ? 0 : ids.length - 1) : (at + delta + ids.length) % ids.length;
    this.select(ids[nextIndex]);
  }

  private setActiveFinding(key: string, applyToSelected: boolean): void {
    this.activeFinding = key;
    const select = this.layout.toolbar.querySelector<HTMLSelectElement>("#active-finding");
    if (select) select.value = key;
    const selected = this.work?.selectedId;
    if (applyToSelected && selected && !selected.startsWith(SUGGESTION_PREFIX)) {
      this.work!.setFinding(selected, key);
      this.boxesChanged();
    }
  }

  // --- wiring -------------------------------------------------------------------------------

  private wireViewer(): void {
    this.viewer.onBoxDrawn((box) => {
      if (!this.work) return;
      this.work.addDrawn(box, this.activeFinding);
      this.boxesChanged();
      this.viewer.selectBox(this.work.selectedId);
    });
    this.viewer.onBoxChanged((id, geometry) => {
      if (!this.work) return;
      if (id.startsWith(SUGGESTION_PREFIX)) {
        // Dragging a suggestion's handles accepts it as edited.
        this.work.acceptSuggestion(id.slice(SUGGESTION_PREFIX.length), geometry);
      } else {
        this.work.moveBox(id, geometry);
      }
      this.boxesChanged();
    });
    this.viewer.onBoxClicked((id) => this.select(id));
    this.viewer.onRendered((info) => {
      if (!this.current) return;
      const measured = this.timings.rendered(this.current.case.id, info.ms);
      if (measured !== null) {
        this.layout.viewerStatus.textContent = `Next case shown ${Math.round(measured)} ms after submit`;
      }
    });
  }

  private wirePage(): void {
    this.commands.listen(document);
    const flushNow = () => void this.saver?.flush(true);
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "hidden") flushNow();
    });
    window.addEventListener("pagehide", flushNow);
    window.addEventListener("beforeunload", (e) => {
      if (this.saver?.hasUnsaved && !this.saver.stale) {
        flushNow();
        e.preventDefault();
      }
    });
    // Leases (and the session) are renewed only while someone works: an untouched tab reaches
    // the idle logoff, and its leases expire back into the queue.
    const activity = new Activity();
    activity.listen(document);
    window.setInterval(() => {
      if (!activity.activeWithin(LEASE_RENEW_MS)) return;
      for (const bundle of [this.current, this.next]) {
        if (bundle) void this.api.put(apiUrls.caseLease(bundle.case.id)).catch((err: unknown) => this.showError(err));
      }
    }, LEASE_RENEW_MS);
  }

  private buildToolbar(): void {
    const { toolbar, saveState } = buildViewerToolbar(
      this.config.schema.findings,
      DEFAULT_PRESETS,
      (id) => this.commands.run(id),
      (key) => this.setActiveFinding(key, false),
      [
        h("button", { type: "button", class: "secondary", id: "skip-case", title: "Skip (Shift+S)", text: "Skip…", onclick: () => void this.skip() }),
        h("button", { type: "button", id: "submit-case", title: "Submit (Ctrl+Enter)", text: "Submit", onclick: () => void this.submit() }),
      ],
    );
    this.saveState = saveState;
    this.layout.toolbar.replaceChildren(...toolbar);
  }

  private registerCommands(): void {
    const c = this.commands;
    const v = () => this.viewer;
    c.register("box.next", { label: "Next box or suggestion", run: () => this.stepSelection(1) });
    c.register("box.extend", {
      label: "Extend the selected box over the slices up to this one (a 3D box)",
      run: () => this.extendSelectedBox(),
    });
    c.register("box.previous", { label: "Previous box or suggestion", run: () => this.stepSelection(-1) });
    c.register("box.deselect", { label: "Deselect", run: () => this.select(null) });
    c.register("suggestion.accept", {
      label: "Accept the selected suggestion (selects the first if none)",
      run: () => {
        const sel = this.work?.selectedId;
        if (sel?.startsWith(SUGGESTION_PREFIX)) this.acceptSuggestion(sel.slice(SUGGESTION_PREFIX.length));
        else {
          const first = this.work?.pendingSuggestions()[0];
          if (first) this.select(SUGGESTION_PREFIX + first.id);
        }
      },
    });
    const rejectOrDelete = () => {
      const sel = this.work?.selectedId;
      if (!sel || !this.work) return;
      if (sel.startsWith(SUGGESTION_PREFIX)) {
        this.work.rejectSuggestion(sel.slice(SUGGESTION_PREFIX.length));
        this.boxesChanged(false);
      } else {
        this.work.deleteBox(sel);
        this.boxesChanged();
      }
    };
    c.register("suggestion.reject", { label: "Reject the selected suggestion / delete the box", run: rejectOrDelete });
    c.register("box.delete", { label: "Delete the selected box / reject the suggestion", run: rejectOrDelete });
    for (const f of this.config.schema.findings) {
      c.register(`finding.${f.key}`, { label: `Class: ${f.name}`, run: () => this.setActiveFinding(f.key, true) });
    }
    c.register("tool.rectangle", { label: "Draw a box", run: () => this.setTool("rectangle") });
    c.register("tool.windowLevel", { label: "Window/level by drag", run: () => this.setTool("windowLevel") });
    c.register("tool.pan", { label: "Pan", run: () => this.setTool("pan") });
    c.register("tool.zoom", { label: "Zoom by drag", run: () => this.setTool("zoom") });
    for (const p of DEFAULT_PRESETS) {
      c.register(`preset.${p.name}`, { label: `Window preset: ${p.name}`, run: () => v().applyPreset(p.name) });
    }
    c.register("view.invert", { label: "Invert", run: () => v().invert() });
    c.register("view.reset", { label: "Reset view", run: () => v().reset() });
    c.register("view.planes", {
      label: "Three planes (axial, coronal, sagittal) / back to the stack",
      run: () => void togglePlanes(v(), this.layout.toolbar),
    });
    c.register("view.zoomIn", { label: "Zoom in", run: () => v().zoomBy(1.25) });
    c.register("view.zoomOut", { label: "Zoom out", run: () => v().zoomBy(0.8) });
    c.register("frame.next", { label: "Next frame", run: () => v().nextFrame(1) });
    c.register("frame.previous", { label: "Previous frame", run: () => v().nextFrame(-1) });
    c.register("image.next", { label: "Next image", run: () => this.stepImage(1) });
    c.register("image.previous", { label: "Previous image", run: () => this.stepImage(-1) });
    c.register("report.focus", {
      label: "Edit the report",
      run: () => this.layout.right.querySelector<HTMLTextAreaElement>(".report textarea")?.focus(),
    });
    c.register("draft.save", { label: "Save the draft now", run: () => void this.saver?.flush() });
    c.register("case.submit", { label: "Submit and open the next case", run: () => void this.submit() });
    c.register("case.skip", { label: "Skip the case (asks for a reason)", run: () => void this.skip() });
    c.register("explain.heatmap", {
      label: "Show / hide the model's heatmap (selected box's finding, else the likeliest, else the active class)",
      run: () => this.heatmapForSelection(),
    });
    c.register("help", { label: "Show this help", run: () => this.showHelp() });
    c.setBindings(annotateBindings(this.config.schema.findings, DEFAULT_PRESETS));
  }

  private setTool(tool: "windowLevel" | "pan" | "zoom" | "rectangle"): void {
    this.viewer.setTool(tool);
    for (const button of this.layout.toolbar.querySelectorAll<HTMLElement>("[data-tool]")) {
      button.setAttribute("aria-pressed", button.dataset.tool === tool ? "true" : "false");
    }
  }

  /** A box drawn on a slice of a series becomes a 3D box reaching the slice on display. */
  private extendSelectedBox(): void {
    const box = this.work?.boxes.find((b) => b.id === this.work?.selectedId);
    const shown = this.viewer.currentImage();
    const stack = this.current?.images.find((i) => i.stack?.slices.some((s) => s.instanceId === box?.instanceId))?.stack;
    if (!box || !shown?.slice || !stack) {
      this.banners.show("extend", "info", "Select a box drawn on a CT or MR series, then scroll to the slice it should reach.");
      return;
    }
    if (!stack.slices.some((s) => s.instanceId === shown.instanceId)) return;
    const drawnOn = stack.slices.findIndex((s) => s.instanceId === box.instanceId) + 1;
    this.work!.extendBox(box.id, drawnOn, shown.slice);
    this.boxesChanged();
  }

  private stepImage(delta: number): void {
    if (!this.current) return;
    const images = this.current.images;
    const shown = this.viewer.currentImage();
    // A slice of a stack belongs to its series' image.
    const at = images.findIndex(
      (i) =>
        i.instanceId === shown?.instanceId ||
        i.stack?.slices.some((slice) => slice.instanceId === shown?.instanceId),
    );
    const target = images[(at + delta + images.length) % images.length];
    if (target) void this.viewer.showImage(target.instanceId, 1);
  }

  private showHelp(): void {
    if (document.querySelector("dialog.help")) return;
    const dialog = openDialog("Keyboard shortcuts", helpBody(this.commands.describe()));
    dialog.classList.add("help");
  }
}
