/** The project settings page (frontend/templates/frontend/settings.html): the label schema
 * (warning while an edit forces the loop to start cold), the queue, the loop and the members,
 * each editable by the roles the server lets change it (config.can) and read-only for the
 * rest. Reads and writes go through the API, which enforces the same policy. Vite entry
 * src/settings/main.ts. ``#settings[data-state]`` is loading, ready, saving or error. */

import "./settings.css";
import { Api, ApiError } from "../shared/api";
import { clear, h } from "../shared/dom";
import { apiUrls } from "../shared/urls";
import {
  changed,
  coldStartWarning,
  fieldsNamed,
  type Finding,
  type LabelSchema,
  parseValue,
  schemaEntryNamed,
  type Section,
  type Value,
} from "./form";

type Config = {
  projectId: number;
  csrfToken: string;
  username: string;
  can: { project: boolean; loop: boolean; viewMembers: boolean; members: boolean };
  grantableRoles: string[];
  roleNames: Record<string, string>;
  promotionMetrics: string[];
  warmStarts: [string, string][];
  coldStarts: [string, string][];
  /** The defaults of the settings the project's model kind has (a project's model_config
   * holds only its overrides). */
  modelDefaults: Record<string, number>;
  /** The model kind the project trains (its own choice, else by modality: CT the 3D detector). */
  modelKind: string;
  /** The IoU at which the operating points match boxes (and the AP floor is measured). */
  boxMatchIou: { value: number; is3d: boolean };
  latestVersion: number | null;
};

type Project = Record<string, unknown> & {
  label_schema: LabelSchema;
  model_config: Record<string, unknown>;
};
type LoopSettings = Record<string, Value>;
type Strategy = { name: string; description: string };
type Member = { id: number; username: string; role: string };

function required<T extends Element>(root: ParentNode, selector: string): T {
  const el = root.querySelector<T>(selector);
  if (!el) throw new Error(`missing ${selector}`);
  return el;
}

type Field = HTMLInputElement | HTMLSelectElement;

/** The named inputs of a form, by name ("lease_seconds", "model_config.train_steps",
 * "loop.cold_start"). */
function fieldsOf(form: HTMLFormElement): Field[] {
  return [...form.querySelectorAll<Field>("input[name], select[name]")];
}

function readField(field: Field): Value {
  if (field instanceof HTMLInputElement && field.type === "checkbox") return field.checked;
  if (field instanceof HTMLInputElement && field.type === "number") return parseValue(field.value, "number");
  return field.value;
}

function writeField(field: Field, value: unknown): void {
  if (field instanceof HTMLInputElement && field.type === "checkbox") field.checked = Boolean(value);
  else field.value = value === null || value === undefined ? "" : String(value);
}

const bare = (name: string): string => name.slice(name.lastIndexOf(".") + 1);

class SettingsPage {
  private readonly api: Api;
  private readonly alert: HTMLElement;
  private project!: Project;
  private loop: LoopSettings = {};
  private strategies: Strategy[] = [];

  constructor(
    private readonly root: HTMLElement,
    private readonly config: Config,
  ) {
    this.api = new Api(config.csrfToken);
    this.alert = required(root, "#alert");
  }

  private get urls() {
    const id = this.config.projectId;
    return {
      project: apiUrls.project(id),
      loop: apiUrls.loopSettings(id),
      members: apiUrls.members(id),
      member: (membershipId: number) => apiUrls.member(id, membershipId),
      strategies: apiUrls.strategies(),
    };
  }

  async load(): Promise<void> {
    try {
      const [project, loop, strategies] = await Promise.all([
        this.api.get<Project>(this.urls.project),
        this.api.get<LoopSettings>(this.urls.loop),
        this.api.get<Strategy[]>(this.urls.strategies),
      ]);
      this.project = project.data;
      this.loop = loop.data;
      this.strategies = strategies.data;
      this.setUpSchema();
      this.setUpQueue();
      this.setUpLoop();
      if (this.config.can.viewMembers) await this.setUpMembers();
      this.setState("ready");
    } catch (err) {
      this.fail(err);
    }
  }

  // --- the label schema ----------------------------------------------------------------

  private get schemaForm(): HTMLFormElement {
    return required(this.root, "#schema-form");
  }

  private setUpSchema(): void {
    const form = this.schemaForm;
    this.drawSchema(this.project.label_schema);
    required(form, "#add-finding").addEventListener("click", () => {
      required(form, "table.findings tbody").append(this.findingRow({ key: "", name: "", color: "#ffffff", hotkey: "" }));
      this.schemaEdited();
    });
    required(form, "#add-section").addEventListener("click", () => {
      required(form, "table.sections tbody").append(this.sectionRow({ key: "", title: "" }));
      this.schemaEdited();
    });
    form.addEventListener("input", () => this.schemaEdited());
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.saveSchema();
    });
    this.makeEditable(required(this.root, "#schema"), this.config.can.project, "leads and admins");
  }

  private drawSchema(schema: LabelSchema): void {
    const form = this.schemaForm;
    required(form, "table.findings tbody").replaceChildren(...schema.findings.map((f) => this.findingRow(f)));
    required(form, "table.sections tbody").replaceChildren(...schema.report_sections.map((s) => this.sectionRow(s)));
    this.schemaEdited();
  }

  private rowTools(): HTMLElement {
    const move = (row: HTMLElement, up: boolean) => {
      const other = up ? row.previousElementSibling : row.nextElementSibling;
      if (other) (up ? other.before(row) : other.after(row));
      this.schemaEdited();
    };
    return h(
      "td",
      { class: "tools" },
      h("button", { type: "button", class: "secondary edit-only", "aria-label": "Move up", title: "Move up",
        onclick: (e: Event) => move((e.currentTarget as HTMLElement).closest("tr")!, true) }, "↑"),
      h("button", { type: "button", class: "secondary edit-only", "aria-label": "Move down", title: "Move down",
        onclick: (e: Event) => move((e.currentTarget as HTMLElement).closest("tr")!, false) }, "↓"),
      h("button", { type: "button", class: "danger edit-only remove",
        onclick: (e: Event) => {
          (e.currentTarget as HTMLElement).closest("tr")!.remove();
          this.schemaEdited();
        } }, "Remove"),
    );
  }

  private findingRow(f: Finding): HTMLTableRowElement {
    const disabled = !this.config.can.project;
    return h(
      "tr",
      { class: "finding" },
      h("td", {}, h("input", { class: "key", value: f.key, "aria-label": "Key", maxlength: 64, disabled })),
      h("td", {}, h("input", { class: "name", value: f.name, "aria-label": "Name", maxlength: 100, disabled })),
      h("td", {}, h("input", { class: "color", type: "color", value: f.color.toLowerCase(), "aria-label": "Colour", disabled })),
      h("td", {}, h("input", { class: "hotkey", value: f.hotkey, "aria-label": "Hotkey", maxlength: 1, size: 2, disabled })),
      this.rowTools(),
    );
  }

  private sectionRow(s: Section): HTMLTableRowElement {
    const disabled = !this.config.can.project;
    return h(
      "tr",
      { class: "section" },
      h("td", {}, h("input", { class: "key", value: s.key, "aria-label": "Key", maxlength: 64, disabled })),
      h("td", {}, h("input", { class: "title", value: s.title, "aria-label": "Title", maxlength: 100, disabled })),
      this.rowTools(),
    );
  }

  private readSchema(): LabelSchema {
    const form = this.schemaForm;
    const text = (row: Element, cls: string) => required<HTMLInputElement>(row, `input.${cls}`).value.trim();
    return {
      findings: [...form.querySelectorAll("tr.finding")].map((row) => ({
        key: text(row, "key"),
        name: text(row, "name"),
        color: text(row, "color"),
        hotkey: required<HTMLInputElement>(row, "input.hotkey").value,
      })),
      report_sections: [...form.querySelectorAll("tr.section")].map((row) => ({
        key: text(row, "key"),
        title: text(row, "title"),
      })),
    };
  }

  private schemaEdited(): void {
    const warning = required<HTMLElement>(this.schemaForm, "#cold-start-warning");
    const coldStart = String(this.loop.cold_start ?? "stored");
    const name = this.config.coldStarts.find(([value]) => value === coldStart)?.[1] ?? coldStart;
    const text = coldStartWarning(this.project.label_schema, this.readSchema(), this.config.latestVersion, name);
    warning.textContent = text ?? "";
    warning.hidden = text === null;
  }

  private async saveSchema(): Promise<void> {
    const form = this.schemaForm;
    const schema = this.readSchema();
    form.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
    const refusal = await this.submit(form, [], async () => {
      const { data } = await this.api.request<Project>("PATCH", this.urls.project, { body: { label_schema: schema } });
      this.project = data;
      this.drawSchema(data.label_schema);
      return "Schema saved.";
    });
    const entry = refusal ? schemaEntryNamed(refusal.message) : null;
    if (entry) {
      const row = form.querySelectorAll(entry.list === "findings" ? "tr.finding" : "tr.section")[entry.row];
      const field = row?.querySelector(`input.${entry.field ?? "key"}`) ?? row?.querySelector("input");
      field?.setAttribute("aria-invalid", "true");
    }
  }

  // --- the queue and the loop -----------------------------------------------------------

  private savedValue(name: string): Value {
    if (name.startsWith("loop.")) return this.loop[bare(name)] ?? null;
    if (name.startsWith("model_config.")) {
      const key = bare(name);
      const value = this.project.model_config[key] ?? this.config.modelDefaults[key];
      return (value ?? null) as Value;
    }
    return (this.project[name] ?? null) as Value;
  }

  private fill(form: HTMLFormElement): void {
    for (const field of fieldsOf(form)) writeField(field, this.savedValue(field.name));
  }

  private values(form: HTMLFormElement, from: (field: Field) => Value): Record<string, Value> {
    return Object.fromEntries(fieldsOf(form).map((field) => [field.name, from(field)]));
  }

  private editedValues(form: HTMLFormElement): Record<string, Value> {
    return changed(
      this.values(form, (field) => this.savedValue(field.name)),
      this.values(form, readField),
    );
  }

  private setUpQueue(): void {
    const form = required<HTMLFormElement>(this.root, "#queue-form");
    this.fill(form);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const edits = this.editedValues(form);
      void this.submit(form, Object.keys(edits), async () => {
        if (!Object.keys(edits).length) return "Nothing changed.";
        const { data } = await this.api.request<Project>("PATCH", this.urls.project, { body: edits });
        this.project = data;
        this.fill(form);
        return `Saved: ${Object.keys(edits).join(", ")}.`;
      });
    });
    this.makeEditable(required(this.root, "#queue"), this.config.can.project, "leads and admins");
  }

  private setUpLoop(): void {
    const form = required<HTMLFormElement>(this.root, "#loop-form");
    const options = (select: HTMLSelectElement, items: [string, string][]) =>
      select.replaceChildren(...items.map(([value, label]) => h("option", { value }, label)));
    const strategy = required<HTMLSelectElement>(form, "#f-acquisition_strategy");
    const known = this.strategies.map((s): [string, string] => [s.name, s.name]);
    const current = String(this.project.acquisition_strategy);
    if (!known.some(([name]) => name === current)) known.push([current, `${current} (unknown)`]);
    options(strategy, known);
    options(required(form, "#f-promotion_metric"), this.config.promotionMetrics.map((m): [string, string] => [m, m]));
    options(required(form, "#f-loop-warm_start"), this.config.warmStarts);
    options(required(form, "#f-loop-cold_start"), this.config.coldStarts);
    const describe = () => {
      required(form, "#strategy-description").textContent =
        this.strategies.find((s) => s.name === strategy.value)?.description ?? "";
    };
    strategy.addEventListener("change", describe);
    // Only the settings the project's model kind has (the CT detector has no findings or
    // report head): a setting of another kind would be refused.
    for (const field of fieldsOf(form)) {
      if (field.name.startsWith("model_config.") && !(bare(field.name) in this.config.modelDefaults)) {
        field.closest("label")?.remove();
      }
    }
    required(form, "#model-kind").textContent = this.config.modelKind;
    const iou = `${this.config.boxMatchIou.is3d ? "3D " : ""}IoU ${this.config.boxMatchIou.value}`;
    form.querySelectorAll<HTMLElement>(".match-iou").forEach((el) => (el.textContent = iou));
    this.fill(form);
    describe();
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const edits = this.editedValues(form);
      void this.submit(form, Object.keys(edits), async () => {
        if (!Object.keys(edits).length) return "Nothing changed.";
        // One request: the project's loop fields and the guard's settings are checked together
        // and stored in one transaction, so a refused value leaves all of them as they were.
        const body: Record<string, unknown> = {};
        const modelConfig: Record<string, Value> = {};
        for (const [name, value] of Object.entries(edits)) {
          if (name.startsWith("model_config.")) modelConfig[bare(name)] = value;
          else body[bare(name)] = value;
        }
        if (Object.keys(modelConfig).length) {
          body.model_config = { ...this.project.model_config, ...modelConfig };
        }
        const { data } = await this.api.request<LoopSettings>("PATCH", this.urls.loop, { body });
        const projectFields = Object.keys(this.project).filter((key) => key in data);
        this.project = { ...this.project, ...Object.fromEntries(projectFields.map((key) => [key, data[key]])) };
        this.loop = data;
        this.fill(form);
        describe();
        this.schemaEdited(); // the cold start's source may have changed
        return `Saved: ${Object.keys(edits).map(bare).join(", ")}.`;
      });
    });
    this.makeEditable(required(this.root, "#loop"), this.config.can.loop, "model owners and admins");
  }

  // --- members --------------------------------------------------------------------------

  private async setUpMembers(): Promise<void> {
    const section = required<HTMLElement>(this.root, "#members");
    const form = required<HTMLFormElement>(section, "#member-form");
    required<HTMLSelectElement>(form, "#m-role").replaceChildren(
      ...this.config.grantableRoles.map((role) => h("option", { value: role }, this.config.roleNames[role] ?? role)),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const username = required<HTMLInputElement>(form, "#m-username").value.trim();
      const role = required<HTMLSelectElement>(form, "#m-role").value;
      void this.submit(form, [], async () => {
        const { data } = await this.api.post<{ message: string }>(this.urls.members, { username, role });
        required<HTMLInputElement>(form, "#m-username").value = "";
        await this.drawMembers();
        return data.message;
      });
    });
    this.makeEditable(section, this.config.can.members, "leads and admins");
    await this.drawMembers();
  }

  private async drawMembers(): Promise<void> {
    const { data } = await this.api.get<Member[]>(this.urls.members);
    const body = required<HTMLElement>(this.root, "#members table.members tbody");
    clear(body);
    const mayRemove = (m: Member) =>
      this.config.can.members && (m.role !== "admin" || this.config.grantableRoles.includes("admin"));
    for (const member of data) {
      body.append(
        h(
          "tr",
          { "data-member": member.id, "data-username": member.username, "data-role": member.role },
          h("td", {}, member.username),
          h("td", {}, this.config.roleNames[member.role] ?? member.role),
          h(
            "td",
            {},
            mayRemove(member) &&
              h("button", { type: "button", class: "danger remove",
                onclick: () => void this.removeMember(member) }, "Remove"),
          ),
        ),
      );
    }
  }

  private async removeMember(member: Member): Promise<void> {
    const form = required<HTMLFormElement>(this.root, "#member-form");
    await this.submit(form, [], async () => {
      await this.api.request("DELETE", this.urls.member(member.id));
      await this.drawMembers();
      return `${member.username} no longer holds the role ${this.config.roleNames[member.role] ?? member.role}.`;
    });
  }

  // --- shared ---------------------------------------------------------------------------

  /** Read-only for the roles that may not change a part: its fields disabled, its buttons
   * hidden, and a line saying who changes it. */
  private makeEditable(section: HTMLElement, editable: boolean, who: string): void {
    section.classList.toggle("read-only", !editable);
    if (editable) return;
    for (const field of section.querySelectorAll<Field | HTMLButtonElement>("input, select, button")) {
      field.disabled = true;
    }
    section.querySelectorAll<HTMLElement>(".edit-only").forEach((el) => (el.hidden = true));
    const who_ = section.querySelector(".who");
    if (who_) who_.textContent = `Read-only for you: ${who} change it.`;
  }

  /** Run one save of ``form``: its message or the refusal shown in the form, the fields a
   * refusal names marked invalid (``names``: the form's field names it may name). */
  private async submit(
    form: HTMLFormElement,
    names: string[],
    save: () => Promise<string>,
  ): Promise<ApiError | null> {
    const error = required<HTMLElement>(form, ".form-error");
    const status = required<HTMLElement>(form, ".form-status");
    error.hidden = true;
    status.textContent = "";
    fieldsOf(form).forEach((f) => f.removeAttribute("aria-invalid"));
    this.setState("saving");
    try {
      status.textContent = await save();
      this.setState("ready");
      return null;
    } catch (err) {
      if (!(err instanceof ApiError) || err.status === 0 || err.status >= 500) {
        this.fail(err);
        return err instanceof ApiError ? err : null;
      }
      error.textContent = err.message;
      error.hidden = false;
      const body = err.body as { fields?: unknown } | null;
      const all = fieldsOf(form).map((f) => f.name);
      const named = fieldsNamed((names.length ? names : all).map(bare), err.message, body?.fields);
      for (const field of fieldsOf(form)) {
        if (named.includes(bare(field.name))) field.setAttribute("aria-invalid", "true");
      }
      this.setState("ready");
      return err;
    }
  }

  private setState(state: "loading" | "ready" | "saving" | "error"): void {
    this.root.dataset.state = state;
    this.root.setAttribute("aria-busy", String(state === "loading" || state === "saving"));
  }

  private fail(err: unknown): void {
    console.error(err);
    this.alert.textContent = err instanceof Error ? err.message : String(err);
    this.alert.hidden = false;
    this.setState("error");
  }
}

const root = document.getElementById("settings");
const configElement = document.getElementById("settings-config");
if (root && configElement?.textContent) {
  void new SettingsPage(root, JSON.parse(configElement.textContent) as Config).load();
}
