/** The audit trail page (frontend/templates/frontend/audit.html): a project's events for its
 * leads and admins, or every event (logins too) for staff; the audit API's filters, pages of
 * ``pageSize`` events, and the same selection as a CSV download. The filters live in the page's
 * address. Vite entry src/audit/main.ts. ``#audit[data-state]`` is loading, ready or error. */

import "./audit.css";
import { Api, ApiError } from "../shared/api";
import { h } from "../shared/dom";
import { apiUrls } from "../shared/urls";
import { type Filters, FILTER_NAMES, filtersFrom, pageLabel, withQuery } from "./query";

type Config = {
  projectId: number | null;
  csrfToken: string;
  pageSize: number;
  actions: string[];
};

type AuditEvent = {
  id: number;
  created_at: string;
  actor_username: string;
  action: string;
  project_id: number | null;
  object_type: string;
  object_id: string;
  ip_address: string | null;
  user_agent: string;
  detail: Record<string, unknown>;
};

type Page = { count: number; next: string | null; previous: string | null; results: AuditEvent[] };

function required<T extends Element>(root: ParentNode, selector: string): T {
  const el = root.querySelector<T>(selector);
  if (!el) throw new Error(`missing ${selector}`);
  return el;
}

class AuditPage {
  private readonly api: Api;
  private readonly form: HTMLFormElement;
  private readonly rows: HTMLTableSectionElement;
  private readonly alert: HTMLElement;
  private readonly summary: HTMLElement;
  private readonly csv: HTMLAnchorElement;
  private readonly previous: HTMLButtonElement;
  private readonly next: HTMLButtonElement;
  private readonly pageLabel: HTMLElement;
  private filters: Filters;
  private offset: number;

  constructor(
    private readonly root: HTMLElement,
    private readonly config: Config,
  ) {
    this.api = new Api(config.csrfToken);
    this.form = required(root, "#filters");
    this.rows = required(root, "#events tbody");
    this.alert = required(root, "#alert");
    this.summary = required(root, "#summary");
    this.csv = required(root, "#csv-link");
    this.previous = required(root, "#previous");
    this.next = required(root, "#next");
    this.pageLabel = required(root, "#page-label");
    const datalist = required(root, "#actions");
    datalist.replaceChildren(...config.actions.map((action) => h("option", { value: action })));
    this.filters = filtersFrom(window.location.search);
    this.offset = Math.max(0, Number(new URLSearchParams(window.location.search).get("offset")) || 0);
    this.fillForm();
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.filters = this.readForm();
      this.offset = 0;
      void this.load();
    });
    required(root, "#clear-filters").addEventListener("click", () => {
      this.filters = {};
      this.offset = 0;
      this.fillForm();
      void this.load();
    });
    this.previous.addEventListener("click", () => {
      this.offset = Math.max(0, this.offset - config.pageSize);
      void this.load();
    });
    this.next.addEventListener("click", () => {
      this.offset += config.pageSize;
      void this.load();
    });
  }

  private inputs(): HTMLInputElement[] {
    return FILTER_NAMES.map((name) => this.form.elements.namedItem(name)).filter(
      (el): el is HTMLInputElement => el instanceof HTMLInputElement,
    );
  }

  private fillForm(): void {
    for (const input of this.inputs()) input.value = this.filters[input.name as keyof Filters] ?? "";
  }

  private readForm(): Filters {
    const filters: Filters = {};
    for (const input of this.inputs()) {
      const value = input.value.trim();
      if (value) filters[input.name as keyof Filters] = value;
    }
    return filters;
  }

  async load(): Promise<void> {
    this.setState("loading");
    const page = { limit: this.config.pageSize, offset: this.offset };
    window.history.replaceState(null, "", withQuery(window.location.pathname, this.filters, page));
    this.csv.href = withQuery(apiUrls.auditEventsCsv(this.config.projectId), this.filters);
    try {
      const { data } = await this.api.get<Page>(withQuery(apiUrls.auditEvents(this.config.projectId), this.filters, page));
      this.alert.hidden = true;
      this.draw(data);
      this.setState("ready");
    } catch (err) {
      this.rows.replaceChildren();
      this.summary.textContent = "";
      this.pageLabel.textContent = "";
      this.previous.disabled = this.next.disabled = true;
      this.fail(err);
    }
  }

  private draw(page: Page): void {
    const global = this.config.projectId === null;
    this.rows.replaceChildren(
      ...page.results.map((event) =>
        h(
          "tr",
          { "data-event": event.id },
          h("td", { title: event.created_at }, new Date(event.created_at).toLocaleString()),
          h("td", {}, event.actor_username ? this.filterButton(event.actor_username, { actor: event.actor_username }) : "—"),
          h("td", { class: "action" }, event.action),
          global ? h("td", {}, event.project_id ?? "—") : null,
          h(
            "td",
            { class: "object" },
            event.object_type
              ? this.filterButton(`${event.object_type} ${event.object_id}`, {
                  object_type: event.object_type,
                  object_id: event.object_id,
                })
              : "—",
          ),
          h("td", { title: event.user_agent }, event.ip_address ?? "—"),
          h("td", { class: "detail" }, Object.keys(event.detail).length ? JSON.stringify(event.detail) : ""),
        ),
      ),
    );
    const noun = page.count === 1 ? "event" : "events";
    const filtered = Object.keys(this.filters).length ? " match the filters" : "";
    this.summary.textContent = `${page.count} ${noun}${filtered}.`;
    this.pageLabel.textContent = pageLabel(this.offset, page.results.length, page.count);
    this.previous.disabled = this.offset === 0;
    this.next.disabled = page.next === null;
  }

  /** A cell's value as a button that narrows the trail to it (added to the filters). */
  private filterButton(text: string, narrow: Filters): HTMLButtonElement {
    return h(
      "button",
      {
        type: "button",
        class: "link",
        title: "Show only these events",
        onclick: () => {
          this.filters = { ...this.filters, ...narrow };
          this.offset = 0;
          this.fillForm();
          void this.load();
        },
      },
      text,
    );
  }

  private setState(state: "loading" | "ready" | "error"): void {
    this.root.dataset.state = state;
    this.root.setAttribute("aria-busy", String(state === "loading"));
  }

  private fail(err: unknown): void {
    console.error(err);
    const message = err instanceof ApiError || err instanceof Error ? err.message : String(err);
    this.alert.textContent = `The audit trail could not be read: ${message}`;
    this.alert.hidden = false;
    this.setState("error");
  }
}

const root = document.getElementById("audit");
const configElement = document.getElementById("audit-config");
if (root && configElement?.textContent) {
  void new AuditPage(root, JSON.parse(configElement.textContent) as Config).load();
}
