/** The held-images page (frontend/templates/frontend/quarantine.html): images held at import for
 * possibly burned-in identifiers, each with the reason it is held and a thumbnail (the full
 * resolution on demand, in a dialog); the lead releases or rejects the selected images in one
 * decision with a comment. Vite entry src/quarantine/main.ts; data from
 * /api/projects/{id}/quarantine/. ``#quarantine[data-state]`` is loading, ready, saving or error. */

import "./quarantine.css";
import { Api, ApiError } from "../shared/api";
import { h } from "../shared/dom";
import { PageStatus, required } from "../shared/page";
import { apiUrls, pageUrls, query } from "../shared/urls";
import { heldSummary } from "./summary";

type Config = {
  projectId: number;
  csrfToken: string;
  /** Whether the user may open the audit trail (each image's History link). */
  canViewAudit: boolean;
};

/** Each image's audit trail (held, fetched, released or rejected). */
const imageHistory = (projectId: number, instanceId: number): string =>
  pageUrls.projectAudit(projectId, query({ object_type: "annotations.Instance", object_id: instanceId }));

export type HeldImage = {
  id: number;
  case: number;
  rows: number;
  columns: number;
  number_of_frames: number;
  modality: string;
  series_description: string;
  quarantine_reason: string;
  held_since: string;
};

type DecisionResult = { decision: "release" | "reject"; instances: number[]; still_held: number };

class QuarantinePage {
  private readonly api: Api;
  private readonly list: HTMLUListElement;
  private readonly status: PageStatus;
  private readonly summary: HTMLElement;
  private readonly form: HTMLFormElement;
  private readonly selectAll: HTMLInputElement;
  private readonly comment: HTMLTextAreaElement;
  private readonly release: HTMLButtonElement;
  private readonly reject: HTMLButtonElement;
  private readonly dialog: HTMLDialogElement;
  private images: HeldImage[] = [];
  private total = 0;

  constructor(
    root: HTMLElement,
    private readonly config: Config,
  ) {
    this.api = new Api(config.csrfToken);
    this.list = required(root, "#held-list");
    this.status = new PageStatus(root, required(root, "#alert"));
    this.summary = required(root, "#summary");
    this.form = required(root, "#decision-form");
    this.selectAll = required(root, "#select-all");
    this.comment = required(root, "#comment");
    this.release = required(root, "#release");
    this.reject = required(root, "#reject");
    this.dialog = required(root, "#full-view");
    this.selectAll.addEventListener("change", () => {
      for (const box of this.checkboxes()) box.checked = this.selectAll.checked;
      this.updateButtons();
    });
    this.list.addEventListener("change", () => this.updateButtons());
    this.comment.addEventListener("input", () => {
      if (this.status.state !== "error") this.status.hide();
    });
    this.release.addEventListener("click", () => void this.decide("release"));
    this.reject.addEventListener("click", () => void this.decide("reject"));
  }

  async load(): Promise<void> {
    this.status.set("loading");
    try {
      const { data, total } = await this.fetchList();
      this.images = data;
      this.total = total;
      this.draw();
      this.status.set("ready");
    } catch (err) {
      this.status.fail(err);
    }
  }

  private async fetchList(): Promise<{ data: HeldImage[]; total: number }> {
    const response = await this.api.get<HeldImage[]>(apiUrls.quarantine(this.config.projectId));
    const total = Number(response.headers.get("X-Total-Count") ?? response.data.length);
    return { data: response.data, total: Number.isFinite(total) ? total : response.data.length };
  }

  private draw(): void {
    this.list.replaceChildren(...this.images.map((image) => this.card(image)));
    this.summary.textContent = heldSummary(this.total, this.images.length);
    this.form.hidden = this.images.length === 0;
    this.selectAll.checked = false;
    this.updateButtons();
  }

  private card(image: HeldImage): HTMLLIElement {
    const label = `image ${image.id} of case ${image.case}`;
    const since = new Date(image.held_since).toLocaleString();
    const frames = image.number_of_frames > 1 ? ` · ${image.number_of_frames} frames` : "";
    return h(
      "li",
      { class: "held", "data-instance": image.id },
      h(
        "label",
        { class: "pick" },
        h("input", { type: "checkbox", value: image.id, "aria-label": `Select ${label}` }),
        ` Case ${image.case}`,
      ),
      h(
        "button",
        {
          type: "button",
          class: "thumb",
          title: "Show at full resolution",
          onclick: () => this.showFull(image),
        },
        h("img", {
          src: apiUrls.instanceThumbnail(image.id),
          alt: `Thumbnail of ${label}`,
          loading: "lazy",
        }),
      ),
      h("p", { class: "reason" }, image.quarantine_reason),
      h(
        "p",
        { class: "meta" },
        `${image.modality || "?"} · ${image.columns}×${image.rows}${frames} · held since ${since}`,
      ),
      h(
        "p",
        { class: "links" },
        h(
          "button",
          { type: "button", class: "link full", onclick: () => this.showFull(image) },
          "Full resolution",
        ),
        this.config.canViewAudit
          ? h("a", { class: "history", href: imageHistory(this.config.projectId, image.id) }, "History")
          : null,
      ),
    );
  }

  private showFull(image: HeldImage): void {
    const img = required<HTMLImageElement>(this.dialog, "#full-image");
    img.src = apiUrls.instanceRender(image.id);
    img.alt = `Image ${image.id} of case ${image.case} at full resolution`;
    required(this.dialog, "#full-caption").textContent =
      `Case ${image.case}, image ${image.id} (${image.columns}×${image.rows}): ${image.quarantine_reason}`;
    this.dialog.showModal();
  }

  private checkboxes(): HTMLInputElement[] {
    return [...this.list.querySelectorAll<HTMLInputElement>("input[type=checkbox]")];
  }

  private selected(): number[] {
    return this.checkboxes()
      .filter((box) => box.checked)
      .map((box) => Number(box.value));
  }

  private updateButtons(): void {
    const count = this.selected().length;
    const saving = this.status.state === "saving";
    this.release.disabled = this.reject.disabled = count === 0 || saving;
    this.release.textContent = count ? `Release ${count} selected` : "Release selected";
    this.reject.textContent = count ? `Reject ${count} selected` : "Reject selected";
  }

  private async decide(decision: "release" | "reject"): Promise<void> {
    const instances = this.selected();
    const comment = this.comment.value.trim();
    if (!instances.length) return;
    if (!comment) {
      this.status.show("Write a comment first: it is kept in the audit trail with your decision.");
      this.comment.focus();
      return;
    }
    this.status.set("saving");
    this.updateButtons();
    try {
      const { data } = await this.api.post<DecisionResult>(apiUrls.quarantineDecisions(this.config.projectId), {
        instances,
        decision,
        comment,
      });
      const done = new Set(data.instances);
      this.images = this.images.filter((image) => !done.has(image.id));
      this.total = data.still_held;
      if (this.images.length === 0 && this.total > 0) {
        const next = await this.fetchList(); // the list held the oldest 500: the rest now
        this.images = next.data;
        this.total = next.total;
      }
      this.status.hide();
      this.comment.value = "";
      this.draw();
      const verb = decision === "release" ? "Released" : "Rejected";
      const noun = done.size === 1 ? "image" : "images";
      this.summary.textContent = `${verb} ${done.size} ${noun}. ${heldSummary(this.total, this.images.length)}`;
      this.status.set("ready");
    } catch (err) {
      if (err instanceof ApiError && err.status === 400) {
        // Nothing was decided: usually another lead decided some of these images meanwhile.
        // Say so, and show the images as they stand now (the comment is kept).
        await this.refreshAfterRefusal(err.message);
      } else {
        this.status.fail(err);
      }
    }
    this.updateButtons();
  }

  private async refreshAfterRefusal(message: string): Promise<void> {
    try {
      const { data, total } = await this.fetchList();
      this.images = data;
      this.total = total;
      this.draw();
      this.status.show(`Nothing was decided: ${message} The list now shows the images still held.`);
      this.status.set("ready");
    } catch (err) {
      this.status.fail(err);
    }
  }
}

const root = document.getElementById("quarantine");
const configElement = document.getElementById("quarantine-config");
if (root && configElement?.textContent) {
  void new QuarantinePage(root, JSON.parse(configElement.textContent) as Config).load();
}
