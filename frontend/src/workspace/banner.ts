/** Visible messages: server errors (role=alert, never swallowed), stale-draft warnings, notes. */

import { clear, h } from "../shared/dom";

export type BannerAction = { label: string; run: () => void; id?: string };

export class Banners {
  constructor(private readonly root: HTMLElement) {}

  /** Show (or replace) the banner named `key`. */
  show(
    key: string,
    kind: "error" | "warning" | "info",
    message: string,
    actions: BannerAction[] = [],
    dismissible = true,
  ): void {
    this.hide(key);
    const banner = h(
      "div",
      { class: `banner ${kind}`, role: kind === "info" ? "status" : "alert", "data-banner": key },
      h("span", { class: "message", text: message }),
      actions.map((a) =>
        h("button", { type: "button", id: a.id, onclick: () => a.run(), text: a.label }),
      ),
      dismissible
        ? h("button", {
            type: "button",
            class: "dismiss",
            "aria-label": "Dismiss",
            text: "×",
            onclick: () => this.hide(key),
          })
        : null,
    );
    this.root.append(banner);
  }

  error(message: string): void {
    this.show("error", "error", message);
  }

  hide(key: string): void {
    this.root.querySelectorAll(`[data-banner="${key}"]`).forEach((el) => el.remove());
  }

  clearAll(): void {
    clear(this.root);
  }
}
