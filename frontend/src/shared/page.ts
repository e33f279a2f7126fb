/** What every data page shares: finding its elements, and its state and alert.
 *
 * A page's root element carries ``data-state`` (loading, ready, saving or error, what the
 * browser tests wait on) and ``aria-busy``; its ``#alert`` element shows what went wrong. */

import { ApiError } from "./api";

export type PageState = "loading" | "ready" | "saving" | "error";

/** The element ``selector`` finds under ``root``; throws when the template lacks it. */
export function required<T extends Element>(root: ParentNode, selector: string): T {
  const el = root.querySelector<T>(selector);
  if (!el) throw new Error(`missing ${selector}`);
  return el;
}

/** A page's state (on its root element) and its alert. */
export class PageStatus {
  constructor(
    private readonly root: HTMLElement,
    private readonly alert: HTMLElement,
  ) {}

  get state(): string | undefined {
    return this.root.dataset.state;
  }

  set(state: PageState): void {
    this.root.dataset.state = state;
    this.root.setAttribute("aria-busy", String(state === "loading" || state === "saving"));
  }

  show(text: string): void {
    this.alert.textContent = text;
    this.alert.hidden = false;
  }

  hide(): void {
    this.alert.hidden = true;
  }

  /** Show the error's message (an API refusal's or any other) and put the page in error. */
  fail(err: unknown): void {
    console.error(err);
    this.show(err instanceof ApiError || err instanceof Error ? err.message : String(err));
    this.set("error");
  }
}
