/** Commands in one registry and key bindings declared as data (the OHIF shape): a binding
 * names a command; the help overlay is generated from the same table. */

import { isTyping } from "../shared/dom";

export type Command = { label: string; run: () => void; enabled?: () => boolean };

export type KeyBinding = {
  /** e.g. "n", "Shift+1", "Ctrl+Enter", "ArrowDown", "?" */
  keys: string[];
  command: string;
  group: string;
  /** also fires while typing in a text field (for Ctrl+ shortcuts and Escape) */
  inText?: boolean;
};

export class CommandRegistry {
  private readonly commands = new Map<string, Command>();
  private bindings: KeyBinding[] = [];

  register(id: string, command: Command): void {
    this.commands.set(id, command);
  }

  run(id: string): boolean {
    const command = this.commands.get(id);
    if (!command || (command.enabled && !command.enabled())) return false;
    command.run();
    return true;
  }

  setBindings(bindings: KeyBinding[]): void {
    this.bindings = bindings;
  }

  /** Bindings with their command labels, for the help overlay. */
  describe(): { group: string; keys: string[]; label: string }[] {
    return this.bindings
      .filter((b) => this.commands.has(b.command))
      .map((b) => ({ group: b.group, keys: b.keys, label: this.commands.get(b.command)!.label }));
  }

  /** The key chord of a keyboard event in the bindings' notation. */
  static chord(event: KeyboardEvent): string {
    const mods: string[] = [];
    if (event.ctrlKey || event.metaKey) mods.push("Ctrl");
    if (event.altKey) mods.push("Alt");
    let key = event.key;
    // Shifted digits arrive as symbols ("!"): use the physical digit so "Shift+1" works.
    if (event.shiftKey && /^Digit\d$/.test(event.code)) key = event.code.slice(5);
    const letter = /^[a-zA-Z]$/.test(key);
    if (letter) key = key.toLowerCase();
    if (event.shiftKey && (letter || key.length > 1 || /^\d$/.test(key))) mods.push("Shift");
    return [...mods, key === " " ? "Space" : key].join("+");
  }

  /** Route keydown events of `target` to commands. Capture phase: Cornerstone's tools listen
   * on the viewport and may stop a key from bubbling. */
  listen(target: Document | HTMLElement): void {
    target.addEventListener("keydown", (event) => {
      const e = event as KeyboardEvent;
      if (e.defaultPrevented || document.querySelector("dialog[open]")) return;
      const chord = CommandRegistry.chord(e);
      const typing = isTyping(e.target);
      for (const binding of this.bindings) {
        if (!binding.keys.includes(chord)) continue;
        if (typing && !binding.inText) continue;
        if (this.run(binding.command)) {
          e.preventDefault();
          e.stopPropagation();
        }
        return;
      }
    }, true);
  }
}
