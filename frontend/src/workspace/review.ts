/** Review mode: the project's submitted annotations; open one read-only over the case's images
 * and accept it or return it to its annotator with a comment. */

import { createViewer, DEFAULT_PRESETS, type ViewerHandle } from "../viewer";
import { Api, ApiError } from "../shared/api";
import { apiUrls } from "../shared/urls";
import { Banners } from "./banner";
import { CommandRegistry, type KeyBinding } from "./commands";
import { helpBody, openDialog } from "./dialogs";
import { h } from "../shared/dom";
import { loadImages } from "./images";
import { presetKeys } from "./keymap";
import { buildLayout, type Layout } from "./layout";
import { renderBoxes } from "./panels/boxes";
import { renderContext } from "./panels/context";
import { renderFindings } from "./panels/findings";
import { renderReport } from "./panels/report";
import { buildViewerToolbar, togglePlanes } from "./toolbar";
import { REVIEW_FILTERS, REVIEW_ORDERINGS, percent, reviewQueueQuery } from "./review_query";
import type { Annotation, CaseDetail, ShownSuggestion, WorkspaceConfig } from "./types";
import { WorkState } from "./work";

type Page<T> = { count: number; results: T[] };

export class ReviewWorkspace {
  private layout!: Layout;
  private viewer!: ViewerHandle;
  private banners!: Banners;
  private readonly commands = new CommandRegistry();
  private queue: Annotation[] = [];
  private open: { annotation: Annotation; case: CaseDetail; work: WorkState } | null = null;
  private queueEl = h("section", { class: "panel review-queue", "aria-label": "Review queue" });
  private ordering = "submitted";
  private filter = "all";
  private contextEl = h("div", { class: "context-slot" });

  constructor(
    private readonly app: HTMLElement,
    private readonly config: WorkspaceConfig,
    private readonly api: Api,
  ) {}

  async start(): Promise<void> {
    this.layout = buildLayout(this.app, "review");
    this.banners = new Banners(this.layout.banners);
    this.layout.caseInfo.replaceChildren(h("strong", { text: this.config.projectName }), " · Review");
    this.layout.left.replaceChildren(this.queueEl, this.contextEl);
    this.layout.right.replaceChildren(h("p", { class: "muted panel", text: "Open a submitted annotation from the list." }));
    this.viewer = await createViewer(this.layout.viewer, this.layout.thumbnails);
    this.viewer.onBoxClicked((id) => this.select(id));
    this.registerCommands();
    const { toolbar } = buildViewerToolbar(
      this.config.schema.findings,
      DEFAULT_PRESETS,
      (id) => this.commands.run(id),
      null,
      [],
      true,
    );
    this.layout.toolbar.replaceChildren(...toolbar);
    this.commands.listen(document);
    await this.loadQueue();
    if (this.queue[0]) await this.openAnnotation(this.queue[0].id);
  }

  private showError(err: unknown): void {
    const message = err instanceof ApiError ? `${err.message} (HTTP ${err.status})` : String(err);
    this.banners.error(message);
    console.error(err);
  }

  private async loadQueue(): Promise<void> {
    try {
      const response = await this.api.get<Page<Annotation>>(
        apiUrls.reviewQueue(this.config.projectId, reviewQueueQuery(this.ordering, this.filter)),
      );
      this.queue = response.data.results;
    } catch (err) {
      this.showError(err);
      this.queue = [];
    }
    this.renderQueue();
  }

  /** Sort and filter by the model's confidence and by how much the annotator changed it. */
  private queueControls(): HTMLElement {
    const choose = (id: string, label: string, options: Record<string, string>, value: string, set: (v: string) => void) =>
      h(
        "label",
        { class: "queue-control" },
        `${label} `,
        h(
          "select",
          {
            id,
            onchange: (e: Event) => {
              set((e.target as HTMLSelectElement).value);
              void this.loadQueue();
            },
          },
          Object.entries(options).map(([key, text]) => h("option", { value: key, selected: key === value, text })),
        ),
      );
    const filters = Object.fromEntries(Object.entries(REVIEW_FILTERS).map(([key, f]) => [key, f.label]));
    return h(
      "div",
      { class: "queue-controls" },
      choose("review-ordering", "Sort", REVIEW_ORDERINGS, this.ordering, (v) => (this.ordering = v)),
      choose("review-filter", "Show", filters, this.filter, (v) => (this.filter = v)),
    );
  }

  private renderQueue(): void {
    this.queueEl.replaceChildren(
      h("h2", { text: `To review (${this.queue.length})` }),
      this.queueControls(),
      this.queue.length
        ? h(
            "ul",
            { class: "queue-list", id: "review-list" },
            this.queue.map((a) =>
              h(
                "li",
                {},
                h(
                  "button",
                  {
                    type: "button",
                    class: this.open?.annotation.id === a.id ? "queue-item selected" : "queue-item",
                    "data-annotation": a.id,
                    "aria-current": this.open?.annotation.id === a.id ? "true" : undefined,
                    onclick: () => void this.openAnnotation(a.id),
                  },
                  `Case ${a.case} · ${a.annotator}`,
                  h("span", { class: "muted", text: ` ${a.boxes.length} boxes · ${a.submitted_at ? new Date(a.submitted_at).toLocaleString() : ""}` }),
                  a.shown_suggestion
                    ? h("span", {
                        class: "model-figures",
                        "data-change": a.shown_suggestion.change ?? "",
                        "data-confidence": a.shown_suggestion.confidence ?? "",
                        text: ` · model v${a.shown_suggestion.model_version_number}: confidence ${percent(a.shown_suggestion.confidence)}, changed ${percent(a.shown_suggestion.change)}`,
                      })
                    : h("span", { class: "muted", text: " · no model suggestion shown" }),
                ),
              ),
            ),
          )
        : h("p", { class: "muted", id: "review-empty", text: "Nothing is waiting for review." }),
    );
  }

  private async openAnnotation(id: number): Promise<void> {
    try {
      const response = await this.api.get<Annotation>(apiUrls.annotation(id));
      const annotation = { ...response.data, etag: response.etag ?? response.data.etag };
      const caseResponse = await this.api.get<CaseDetail>(apiUrls.case(annotation.case));
      const work = new WorkState(this.config.schema);
      // Read-only: show exactly what was submitted, without the model's prefill.
      work.load(annotation, null);
      this.open = { annotation, case: caseResponse.data, work };
      // Exactly what the annotator was shown (recorded when it was served), not whatever the
      // model serves now.
      const shown = annotation.shown_suggestion ?? null;
      this.banners.clearAll();
      this.layout.caseInfo.replaceChildren(
        h("strong", { text: this.config.projectName }),
        ` · Review · Case ${annotation.case} by ${annotation.annotator}`,
        h("span", { class: "badge", text: annotation.status }),
      );
      this.contextEl.replaceChildren(renderContext(caseResponse.data));
      this.renderQueue();
      this.renderRight(shown);
      await this.viewer.setImages(await loadImages(this.api, caseResponse.data));
      this.syncBoxes();
    } catch (err) {
      this.showError(err);
    }
  }

  private renderRight(shown: ShownSuggestion | null): void {
    const open = this.open!;
    const comment = h("textarea", { id: "review-comment", rows: "3", "aria-label": "Comment for the annotator" });
    const form = h(
      "section",
      { class: "panel review-form", "aria-label": "Decision" },
      h("h2", { text: "Decision" }),
      h("label", { for: "review-comment", text: "Comment (needed to return)" }),
      comment,
      h(
        "div",
        { class: "dialog-buttons" },
        h("button", { type: "button", id: "review-accept", text: "Accept", onclick: () => void this.decide("accept", comment.value) }),
        h("button", { type: "button", id: "review-return", class: "danger", text: "Return to annotator", onclick: () => void this.decide("return", comment.value) }),
      ),
    );
    this.layout.right.replaceChildren(
      form,
      renderBoxes(open.work, this.config.schema.findings, {
        select: (id) => this.select(id),
        setFinding: () => undefined,
        remove: () => undefined,
        accept: () => undefined,
        reject: () => undefined,
      }, true),
      renderShownSummary(shown),
      renderFindings(this.config.schema.findings, open.work.findings, shown?.finding_probabilities ?? {}, new Set(), null),
      renderReport(this.config.schema.report_sections, open.work.report, shown?.report_draft ?? {}, null).element,
    );
  }

  private select(id: string | null): void {
    if (!this.open) return;
    this.open.work.selectedId = id;
    const box = id ? this.open.work.boxes.find((b) => b.id === id) : undefined;
    if (box) void this.viewer.showImage(box.instanceId, box.frame);
    this.viewer.selectBox(id);
    this.syncBoxes();
  }

  private syncBoxes(): void {
    if (!this.open) return;
    const classes = new Map(this.config.schema.findings.map((f) => [f.key, f]));
    this.viewer.setBoxes(
      this.open.work.boxes.map((b) => ({
        id: b.id,
        instanceId: b.instanceId,
        frame: b.frame,
        x: b.x,
        y: b.y,
        width: b.width,
        height: b.height,
        finding: b.finding,
        color: classes.get(b.finding)?.color ?? "#fff",
        kind: "drawn",
        // A 3D box is shown on every slice of its range (and in the three planes), as when drawn.
        label: (classes.get(b.finding)?.name ?? b.finding) + (b.slices ? ` · slices ${b.slices[0]}–${b.slices[1]}` : ""),
        selected: this.open!.work.selectedId === b.id,
        ...(b.slices ? { slices: b.slices } : {}),
      })),
    );
  }

  private async decide(decision: "accept" | "return", comment: string): Promise<void> {
    if (!this.open) return;
    if (decision === "return" && !comment.trim()) {
      this.banners.error("Returning needs a comment that tells the annotator what to change.");
      this.layout.right.querySelector<HTMLTextAreaElement>("#review-comment")?.focus();
      return;
    }
    const done = this.open.annotation;
    try {
      await this.api.post(apiUrls.annotationReview(done.id), { decision, comment }, done.etag);
      this.banners.show(
        "decided",
        "info",
        `Case ${done.case} by ${done.annotator}: ${decision === "accept" ? "accepted" : "returned to the annotator"}.`,
      );
      this.open = null;
      await this.loadQueue();
      const next = this.queue[0];
      if (next) await this.openAnnotation(next.id);
      else {
        this.viewer.setBoxes([]);
        this.layout.right.replaceChildren(h("p", { class: "muted panel", text: "Nothing left to review." }));
        this.contextEl.replaceChildren();
      }
    } catch (err) {
      this.showError(err);
    }
  }

  private registerCommands(): void {
    const c = this.commands;
    const hotkeys = new Set(this.config.schema.findings.map((f) => f.hotkey).filter((k): k is string => !!k));
    const bindings: KeyBinding[] = [];
    const step = (delta: number) => {
      const ids = this.open?.work.orderedIds() ?? [];
      if (!ids.length) return;
      const at = ids.indexOf(this.open!.work.selectedId ?? "");
      this.select(ids[at < 0 ? 0 : (at + delta + ids.length) % ids.length]);
    };
    c.register("box.next", { label: "Next box", run: () => step(1) });
    c.register("box.previous", { label: "Previous box", run: () => step(-1) });
    bindings.push({ keys: ["n", "j"], command: "box.next", group: "Boxes" }, { keys: ["p", "k"], command: "box.previous", group: "Boxes" });
    for (const [tool, key] of [["windowLevel", "w"], ["pan", "h"], ["zoom", "z"]] as const) {
      c.register(`tool.${tool}`, { label: `Tool: ${tool}`, run: () => this.viewer.setTool(tool) });
      bindings.push({ keys: [key], command: `tool.${tool}`, group: "Tools" });
    }
    for (const p of DEFAULT_PRESETS) {
      c.register(`preset.${p.name}`, { label: `Window preset: ${p.name}`, run: () => this.viewer.applyPreset(p.name) });
      bindings.push({ keys: presetKeys(p, hotkeys), command: `preset.${p.name}`, group: "Window" });
    }
    c.register("view.invert", { label: "Invert", run: () => this.viewer.invert() });
    c.register("view.reset", { label: "Reset view", run: () => this.viewer.reset() });
    c.register("view.planes", {
      label: "Three planes (axial, coronal, sagittal) / back to the stack",
      run: () => void togglePlanes(this.viewer, this.layout.toolbar),
    });
    c.register("frame.next", { label: "Next frame", run: () => this.viewer.nextFrame(1) });
    c.register("frame.previous", { label: "Previous frame", run: () => this.viewer.nextFrame(-1) });
    c.register("review.accept", { label: "Accept", run: () => void this.decide("accept", this.commentText()) });
    c.register("help", { label: "Show this help", run: () => openDialog("Keyboard shortcuts", helpBody(c.describe())).classList.add("help") });
    bindings.push(
      { keys: ["i"], command: "view.invert", group: "Window" },
      { keys: ["r"], command: "view.reset", group: "Window" },
      { keys: ["m"], command: "view.planes", group: "Window" },
      { keys: ["ArrowDown"], command: "frame.next", group: "Images" },
      { keys: ["ArrowUp"], command: "frame.previous", group: "Images" },
      { keys: ["Ctrl+Enter"], command: "review.accept", group: "Decision", inText: true },
      { keys: ["?"], command: "help", group: "Decision" },
    );
    c.setBindings(bindings.filter((b) => b.keys.length));
  }

  private commentText(): string {
    return this.layout.right.querySelector<HTMLTextAreaElement>("#review-comment")?.value ?? "";
  }
}

/** What the model showed the annotator and how much they changed it. */
function renderShownSummary(shown: ShownSuggestion | null): HTMLElement {
  if (!shown) {
    return h("section", { class: "panel shown-summary", id: "shown-summary" }, h("p", { class: "muted", text: "No model suggestion was shown to the annotator." }));
  }
  const rows: [string, string][] = [
    ["Model version", `v${shown.model_version_number}`],
    ["Boxes shown", String(shown.boxes.length)],
    ["Boxes kept (IoU ≥ 0.5)", percent(shown.boxes_kept_fraction)],
    ["Prefilled findings changed", percent(shown.findings_changed_fraction)],
    ["Draft words edited", percent(shown.draft_edit_distance)],
    ["Model confidence", percent(shown.confidence)],
    ["Changed overall", percent(shown.change)],
  ];
  return h(
    "section",
    { class: "panel shown-summary", id: "shown-summary", "aria-label": "What the model showed" },
    h("h2", { text: "What the model showed" }),
    h("table", {}, h("tbody", {}, rows.map(([k, v]) => h("tr", {}, h("th", { scope: "row", text: k }), h("td", { text: v }))))),
  );
}
