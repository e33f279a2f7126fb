/** The adjudication page (frontend/templates/frontend/adjudication.html): double-read cases whose
 * two reads disagree, each shown with both readers' boxes over the image, their findings and
 * reports side by side; the reviewer adopts one read or composes the final label. Vite entry
 * src/adjudication/main.ts; data from /api/projects/{id}/adjudications/ and /api/adjudications/.
 * ``#adjudication[data-state]`` is loading, ready, saving or error. */

import "./adjudication.css";
import { Api } from "../shared/api";
import { h } from "../shared/dom";
import { PageStatus, required } from "../shared/page";
import { apiUrls, query } from "../shared/urls";
import type { SeriesStack } from "../workspace/images";
import type { Series } from "../workspace/types";
import { describeBox, figures } from "./figures";
import {
  type BoxChoice,
  type BoxRow,
  defaultBoxChoice,
  defaultFindings,
  finalBoxes,
  pairBoxes,
  type Read,
  slicesOf,
  undecided,
} from "./merge";

type Config = {
  projectId: number;
  csrfToken: string;
  findings: { key: string; name: string; color: string }[];
  sections: { key: string; title: string }[];
};

type Row = {
  id: number;
  case: number;
  status: string;
  readers: string[];
  box_f1: number;
  report_rouge_l: number;
  findings_differing: string[];
  reasons: string[];
  adjudicated_by: string | null;
};

type Detail = Row & {
  reads: Read[];
  final: Read | null;
  case_detail: { indication: string; history: string; series: Series[] };
};

const CALLS = ["present", "absent", "uncertain"];
const READER_CLASS = ["reader-a", "reader-b"];

class AdjudicationPage {
  private readonly api: Api;
  private readonly list: HTMLElement;
  private readonly detail: HTMLElement;
  private readonly status: PageStatus;
  private readonly statusFilter: HTMLSelectElement;
  private current: Detail | null = null;
  private boxRows: BoxRow[] = [];
  private boxChoices: Record<string, BoxChoice> = {};
  /** Each series holding a 3D box: its instance ids in stack order (its slice numbers). */
  private stacks = new Map<number, number[]>();
  private finalFindings: Record<string, string> = {};

  constructor(
    root: HTMLElement,
    private readonly config: Config,
  ) {
    this.api = new Api(config.csrfToken);
    this.list = required(root, "#adjudication-list");
    this.detail = required(root, "#adjudication-detail");
    this.status = new PageStatus(root, required(root, "#alert"));
    this.statusFilter = required(root, "#status-filter");
    this.statusFilter.addEventListener("change", () => void this.loadList());
  }

  async loadList(): Promise<void> {
    this.status.set("loading");
    try {
      const url = apiUrls.adjudications(this.config.projectId, query({ status: this.statusFilter.value, limit: 200 }));
      const { data } = await this.api.request<{ count: number; results: Row[] }>("GET", url);
      this.list.replaceChildren(this.listTable(data.results, data.count));
      this.status.set("ready");
    } catch (err) {
      this.status.fail(err);
    }
  }

  private listTable(rows: Row[], count: number): HTMLElement {
    if (!rows.length) return h("p", { class: "empty", "data-testid": "no-adjudications", text: "Nothing here." });
    return h(
      "table",
      { class: "numbers", "data-testid": "adjudication-table" },
      h("caption", { text: `${count} case${count === 1 ? "" : "s"}` }),
      h(
        "thead",
        {},
        h("tr", {}, ["Case", "Readers", "Box F1", "Why"].map((t) => h("th", { scope: "col", text: t }))),
      ),
      h(
        "tbody",
        {},
        rows.map((row) =>
          h(
            "tr",
            { "data-double-read": row.id, class: this.current?.id === row.id ? "selected" : "" },
            h("th", { scope: "row" }, h("button", { type: "button", class: "link", onclick: () => void this.open(row.id), text: `Case ${row.case}` })),
            h("td", { text: row.readers.join(" · ") }),
            h("td", { class: "num", text: row.box_f1.toFixed(2) }),
            h("td", { text: row.reasons.join("; ") || row.status }),
          ),
        ),
      ),
    );
  }

  async open(id: number): Promise<void> {
    this.status.set("loading");
    try {
      const { data } = await this.api.request<Detail>("GET", apiUrls.adjudication(id));
      this.current = data;
      const [a, b] = data.reads;
      this.boxRows = pairBoxes(a.boxes, b.boxes);
      this.stacks = await this.loadStacks(data);
      this.boxChoices = Object.fromEntries(this.boxRows.map((r) => [r.key, defaultBoxChoice(r)]));
      this.finalFindings = defaultFindings(this.findingKeys(), a, b);
      this.renderDetail();
      for (const tr of this.list.querySelectorAll<HTMLElement>("tr[data-double-read]")) {
        tr.classList.toggle("selected", Number(tr.dataset.doubleRead) === id);
      }
      this.status.set("ready");
    } catch (err) {
      this.status.fail(err);
    }
  }

  /** The stack order of every series a read's 3D box lies in (audited reads of the case). */
  private async loadStacks(data: Detail): Promise<Map<number, number[]>> {
    const ids = new Set(data.reads.flatMap((r) => r.boxes.filter((b) => slicesOf(b)).map((b) => b.series_id!)));
    const entries = await Promise.all(
      [...ids].map(async (id) => {
        const { data: stack } = await this.api.request<SeriesStack>("GET", apiUrls.seriesStack(data.case, id));
        return [id, stack.instance_ids] as const;
      }),
    );
    return new Map(entries);
  }

  private findingKeys(): string[] {
    return this.config.findings.map((f) => f.key);
  }

  private renderDetail(): void {
    const data = this.current;
    if (!data) return;
    const [a, b] = data.reads;
    const pending = data.status === "pending";
    const parts: (HTMLElement | null)[] = [
      h(
        "div",
        { class: "detail-head" },
        h("h2", { text: `Case ${data.case}` }),
        h("span", { class: "legend reader-a", text: `A: ${a.annotator}` }),
        h("span", { class: "legend reader-b", text: `B: ${b.annotator}` }),
        pending
          ? h(
              "span",
              { class: "actions" },
              h("button", { type: "button", "data-testid": "adopt-a", onclick: () => void this.resolve({ use: a.id }), text: `Adopt A's read` }),
              h("button", { type: "button", "data-testid": "adopt-b", onclick: () => void this.resolve({ use: b.id }), text: `Adopt B's read` }),
            )
          : h("span", { class: "badge", text: data.adjudicated_by ? `adjudicated by ${data.adjudicated_by}` : data.status }),
      ),
      h("p", { class: "context" }, h("b", { text: "Indication: " }), data.case_detail.indication || "—"),
      h(
        "div",
        { class: "detail-body" },
        this.images(data),
        h("div", { class: "calls" }, this.findingsTable(a, b, pending), this.boxTable(pending)),
      ),
      this.reports(a, b, pending),
      pending
        ? h("div", { class: "save" }, h("button", { type: "button", class: "primary", "data-testid": "save-final", onclick: () => void this.saveComposed(), text: "Save final label" }))
        : null,
    ];
    this.detail.replaceChildren(...parts.filter((p): p is HTMLElement => p !== null));
  }

  private images(data: Detail): HTMLElement {
    return h(
      "div",
      { class: "images" },
      figures(data.case_detail.series, this.boxRows, this.stacks).map(({ instance, caption, boxes }) => {
        const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
        svg.setAttribute("viewBox", `0 0 ${instance.columns} ${instance.rows}`);
        svg.setAttribute("data-instance", String(instance.id));
        for (const { row, side, box } of boxes) {
          const rect = document.createElementNS("http://www.w3.org/2000/svg", "rect");
          for (const [k, v] of Object.entries({ x: box.x, y: box.y, width: box.width, height: box.height })) rect.setAttribute(k, String(v));
          rect.setAttribute("class", `${READER_CLASS[side]} ${this.boxChoices[row] === (side ? "b" : "a") ? "kept" : ""}`);
          rect.setAttribute("data-row", row);
          const title = document.createElementNS("http://www.w3.org/2000/svg", "title");
          const range = slicesOf(box);
          title.textContent = `${side ? "B" : "A"}: ${box.finding}${range ? ` (slices ${range[0]}–${range[1]})` : ""}`;
          rect.append(title);
          svg.append(rect);
        }
        return h(
          "figure",
          { class: "image", style: { aspectRatio: `${instance.columns} / ${instance.rows}` }, "data-caption": caption },
          h("img", { src: apiUrls.instanceRender(instance.id), alt: caption || `Image ${instance.instance_number ?? instance.id}` }),
          svg,
          caption ? h("figcaption", { text: caption }) : null,
        );
      }),
    );
  }

  private findingsTable(a: Read, b: Read, pending: boolean): HTMLElement {
    const final = this.current?.final;
    return h(
      "table",
      { class: "numbers findings", "data-testid": "findings" },
      h("caption", { text: "Findings" }),
      h("thead", {}, h("tr", {}, ["Finding", "A", "B", "Final"].map((t) => h("th", { scope: "col", text: t })))),
      h(
        "tbody",
        {},
        this.config.findings.map((f) => {
          const differ = (a.findings[f.key] ?? "") !== (b.findings[f.key] ?? "");
          const select = h(
            "select",
            {
              "data-finding": f.key,
              "aria-label": `Final call: ${f.name}`,
              disabled: !pending,
              onchange: (e: Event) => {
                this.finalFindings[f.key] = (e.target as HTMLSelectElement).value;
              },
            },
            h("option", { value: "", text: "— choose —" }),
            CALLS.map((c) => h("option", { value: c, text: c, selected: (pending ? this.finalFindings[f.key] : final?.findings[f.key]) === c })),
          );
          return h(
            "tr",
            { class: differ ? "differ" : "", "data-finding-row": f.key },
            h("th", { scope: "row", text: f.name }),
            h("td", { text: a.findings[f.key] ?? "—" }),
            h("td", { text: b.findings[f.key] ?? "—" }),
            h("td", {}, select),
          );
        }),
      ),
    );
  }

  private boxTable(pending: boolean): HTMLElement {
    return h(
      "table",
      { class: "numbers boxes", "data-testid": "boxes" },
      h("caption", { text: "Boxes (pairs at IoU ≥ 0.5; 3D boxes of a series by 3D IoU)" }),
      h("thead", {}, h("tr", {}, ["Finding", "A", "B", "IoU", "Keep"].map((t) => h("th", { scope: "col", text: t })))),
      h(
        "tbody",
        {},
        this.boxRows.map((row) => {
          const options: [BoxChoice, string][] = [["none", "neither"]];
          if (row.a) options.push(["a", "A's"]);
          if (row.b) options.push(["b", "B's"]);
          return h(
            "tr",
            { "data-box-row": row.key, class: row.a && row.b ? "" : "differ" },
            h("th", { scope: "row", text: row.finding }),
            h("td", { text: describeBox(row.a) }),
            h("td", { text: describeBox(row.b) }),
            h("td", { class: "num", text: row.iou === null ? "—" : row.iou.toFixed(2) }),
            h(
              "td",
              {},
              h(
                "select",
                {
                  "aria-label": `Keep box: ${row.finding}`,
                  disabled: !pending,
                  onchange: (e: Event) => {
                    this.boxChoices[row.key] = (e.target as HTMLSelectElement).value as BoxChoice;
                    this.refreshKept();
                  },
                },
                options.map(([value, label]) => h("option", { value, text: label, selected: this.boxChoices[row.key] === value })),
              ),
            ),
          );
        }),
      ),
    );
  }

  private refreshKept(): void {
    for (const rect of this.detail.querySelectorAll<SVGRectElement>("rect[data-row]")) {
      const side = rect.classList.contains("reader-b") ? "b" : "a";
      rect.classList.toggle("kept", this.boxChoices[rect.dataset.row ?? ""] === side);
    }
  }

  private reports(a: Read, b: Read, pending: boolean): HTMLElement {
    const final = this.current?.final;
    return h(
      "div",
      { class: "reports" },
      this.config.sections.map((section) =>
        h(
          "fieldset",
          { class: "report", "data-section": section.key },
          h("legend", { text: section.title }),
          h("blockquote", { class: "reader-a" }, h("b", { text: "A: " }), a.report[section.key] || "—"),
          h("blockquote", { class: "reader-b" }, h("b", { text: "B: " }), b.report[section.key] || "—"),
          h(
            "div",
            { class: "pick" },
            h("button", { type: "button", class: "small", disabled: !pending, onclick: () => this.setReport(section.key, a.report[section.key] ?? ""), text: "Use A" }),
            h("button", { type: "button", class: "small", disabled: !pending, onclick: () => this.setReport(section.key, b.report[section.key] ?? ""), text: "Use B" }),
          ),
          h("textarea", {
            rows: 3,
            "data-report": section.key,
            "aria-label": `Final ${section.title}`,
            disabled: !pending,
            value: pending ? (a.report[section.key] ?? "") : (final?.report[section.key] ?? ""),
          }),
        ),
      ),
    );
  }

  private setReport(key: string, text: string): void {
    required<HTMLTextAreaElement>(this.detail, `textarea[data-report="${key}"]`).value = text;
  }

  private async saveComposed(): Promise<void> {
    const missing = undecided(this.findingKeys(), this.finalFindings);
    if (missing.length) {
      const names = this.config.findings.filter((f) => missing.includes(f.key)).map((f) => f.name);
      this.status.show(`Choose the final call for: ${names.join(", ")}.`);
      return;
    }
    const report: Record<string, string> = {};
    for (const area of this.detail.querySelectorAll<HTMLTextAreaElement>("textarea[data-report]")) {
      report[area.dataset.report ?? ""] = area.value;
    }
    await this.resolve({ findings: this.finalFindings, report, boxes: finalBoxes(this.boxRows, this.boxChoices) });
  }

  private async resolve(body: Record<string, unknown>): Promise<void> {
    const data = this.current;
    if (!data) return;
    this.status.set("saving");
    try {
      await this.api.request("POST", apiUrls.resolveAdjudication(data.id), { body });
      this.status.hide();
      await this.loadList();
      await this.open(data.id);
    } catch (err) {
      this.status.fail(err);
    }
  }
}

const root = document.getElementById("adjudication");
const configElement = document.getElementById("adjudication-config");
if (root && configElement?.textContent) {
  const page = new AdjudicationPage(root, JSON.parse(configElement.textContent) as Config);
  const wanted = Number(new URL(window.location.href).searchParams.get("open"));
  void page.loadList().then(() => (wanted ? page.open(wanted) : undefined));
}
