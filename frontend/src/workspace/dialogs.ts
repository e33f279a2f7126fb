/** Modal dialogs (native <dialog>, so focus is trapped and Escape closes them). */

import { h } from "../shared/dom";

export function openDialog(title: string, body: Node, buttons: HTMLElement[] = []): HTMLDialogElement {
  const dialog = h(
    "dialog",
    { class: "modal", "aria-label": title },
    // Focus the title first, so a long dialog opens at its top rather than at its buttons.
    h("h2", { text: title, tabindex: "-1", autofocus: true }),
    body,
    h("div", { class: "dialog-buttons" }, ...buttons, h("button", {
      type: "button",
      class: "secondary",
      text: "Close",
      onclick: () => dialog.close(),
    })),
  );
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  return dialog;
}

/** Ask for a line of text; resolves null when cancelled. */
export function promptText(title: string, label: string, submitLabel: string): Promise<string | null> {
  return new Promise((resolve) => {
    let result: string | null = null;
    const input = h("input", { type: "text", id: "dialog-input", required: true, maxlength: "200", "aria-label": label });
    const form = h(
      "form",
      { method: "dialog", class: "prompt" },
      h("label", { for: "dialog-input", text: label }),
      input,
      h(
        "div",
        { class: "dialog-buttons" },
        h("button", { type: "submit", id: "dialog-submit", text: submitLabel }),
        h("button", { type: "button", class: "secondary", text: "Cancel", onclick: () => dialog.close() }),
      ),
    );
    form.addEventListener("submit", (e) => {
      const value = input.value.trim();
      if (!value) {
        e.preventDefault();
        input.focus();
        return;
      }
      result = value;
    });
    const dialog = h("dialog", { class: "modal", "aria-label": title }, h("h2", { text: title }), form);
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(result);
    });
    document.body.append(dialog);
    dialog.showModal();
    input.focus();
  });
}

export function helpBody(rows: { group: string; keys: string[]; label: string }[]): HTMLElement {
  const groups = new Map<string, typeof rows>();
  for (const row of rows) groups.set(row.group, [...(groups.get(row.group) ?? []), row]);
  return h(
    "div",
    { class: "help-grid" },
    [...groups].map(([group, items]) =>
      h(
        "section",
        {},
        h("h3", { text: group }),
        h(
          "table",
          { class: "keys" },
          h(
            "tbody",
            {},
            items.map((item) =>
              h(
                "tr",
                {},
                h("td", {}, item.keys.map((k, i) => [i ? " / " : "", h("kbd", { text: k })]).flat()),
                h("td", { text: item.label }),
              ),
            ),
          ),
        ),
      ),
    ),
  );
}
