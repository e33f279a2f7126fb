/** What the settings page decides without the DOM: whether a schema forces a cold start, which
 * values of a form changed, and which field a refusal names. */

export type Finding = { key: string; name: string; color: string; hotkey: string };
export type Section = { key: string; title: string };
export type LabelSchema = { findings: Finding[]; report_sections: Section[] };

/** The finding classes a model is trained on, in order: another list (renamed, added, removed
 * or reordered keys) means the next cycle cannot build on an earlier version. */
export function findingKeysChanged(saved: LabelSchema, edited: LabelSchema): boolean {
  const before = saved.findings.map((f) => f.key);
  const after = edited.findings.map((f) => f.key.trim());
  return before.length !== after.length || before.some((key, i) => key !== after[i]);
}

/** The warning shown while the edited schema forces a cold start (null when it does not). */
export function coldStartWarning(
  saved: LabelSchema,
  edited: LabelSchema,
  latestVersion: number | null,
  coldStartName: string,
): string | null {
  if (latestVersion === null || !findingKeysChanged(saved, edited)) return null;
  return (
    `Changing the finding classes (their keys or their order) forces a cold start: the next ` +
    `retraining cycle cannot build on version ${latestVersion} and starts from ` +
    `${coldStartName.charAt(0).toLowerCase()}${coldStartName.slice(1)}. Suggestions stay those ` +
    `of the serving version until a new one is promoted.`
  );
}

export type Value = string | number | boolean | null;

/** A form value as the API takes it: numbers as numbers, an empty box as null (the server
 * names the field it refuses), text as text. */
export function parseValue(raw: string, kind: "number" | "text"): Value {
  if (kind === "text") return raw;
  const text = raw.trim();
  if (text === "") return null;
  const number = Number(text);
  return Number.isFinite(number) ? number : text;
}

/** The entries of ``edited`` whose value differs from ``saved``. */
export function changed(saved: Record<string, Value>, edited: Record<string, Value>): Record<string, Value> {
  const out: Record<string, Value> = {};
  for (const [name, value] of Object.entries(edited)) {
    if (saved[name] !== value) out[name] = value;
  }
  return out;
}

/** The field names (of ``names``) that a refusal names: the keys of its ``fields`` when the
 * API sent them, else the names its message mentions as words, longest first. */
export function fieldsNamed(names: string[], message: string, fields?: unknown): string[] {
  if (fields && typeof fields === "object") {
    const keys = Object.keys(fields as Record<string, unknown>).filter((k) => names.includes(k));
    if (keys.length) return keys;
  }
  const found: string[] = [];
  for (const name of [...names].sort((a, b) => b.length - a.length)) {
    const pattern = new RegExp(`(^|[^a-z0-9_])${name.replace(/[.]/g, "\\.")}($|[^a-z0-9_])`);
    if (pattern.test(message) && !found.some((f) => f.includes(name))) found.push(name);
  }
  return found;
}

/** The schema entry a refusal names ("label_schema.findings[6].hotkey ..."): which list, the
 * row and the field (null when it names none). */
export function schemaEntryNamed(
  message: string,
): { list: "findings" | "report_sections"; row: number; field: string | null } | null {
  const match = /label_schema\.(findings|report_sections)\[(\d+)\](?:\.([a-z_]+))?/.exec(message);
  if (!match) return null;
  return { list: match[1] as "findings" | "report_sections", row: Number(match[2]), field: match[3] ?? null };
}
