/** The audit trail page's query: the filters the audit API takes, read from and written to the
 * page's own address, so that a filtered view can be reloaded, shared and downloaded as CSV. */

export const FILTER_NAMES = [
  "action",
  "actor",
  "since",
  "until",
  "object_type",
  "object_id",
  "project",
] as const;
export type FilterName = (typeof FILTER_NAMES)[number];
export type Filters = Partial<Record<FilterName, string>>;

/** The filters named in ``search`` (a query string), blanks dropped. */
export function filtersFrom(search: string): Filters {
  const params = new URLSearchParams(search);
  const filters: Filters = {};
  for (const name of FILTER_NAMES) {
    const value = params.get(name)?.trim();
    if (value) filters[name] = value;
  }
  return filters;
}

/** ``base`` with the filters (and, for a page of the list, ``limit`` and ``offset``). */
export function withQuery(base: string, filters: Filters, page?: { limit: number; offset: number }): string {
  const params = new URLSearchParams();
  for (const name of FILTER_NAMES) {
    const value = filters[name];
    if (value) params.set(name, value);
  }
  if (page) {
    params.set("limit", String(page.limit));
    if (page.offset > 0) params.set("offset", String(page.offset));
  }
  const query = params.toString();
  return query ? `${base}?${query}` : base;
}

/** "51–100 of 230" for the page at ``offset`` holding ``shown`` of ``count`` events. */
export function pageLabel(offset: number, shown: number, count: number): string {
  if (count === 0 || shown === 0) return `0 of ${count}`;
  return `${offset + 1}–${offset + shown} of ${count}`;
}
