/** Entry point of the workspace bundle: read the page's config and start annotate or review
 * mode. Vite's entry (frontend/src/workspace/main.ts). */

import "./workspace.css";
import { Api } from "./api";
import { AnnotateWorkspace } from "./annotate";
import { h } from "./dom";
import { ReviewWorkspace } from "./review";
import type { WorkspaceConfig } from "./types";

function readConfig(app: HTMLElement): WorkspaceConfig {
  // The Django page embeds it with json_script (#workspace-config) or as data-config.
  const script = document.getElementById("workspace-config");
  const raw = script?.textContent || app.dataset.config;
  if (!raw) throw new Error("The page has no workspace configuration.");
  return JSON.parse(raw) as WorkspaceConfig;
}

/** Stylesheets of the chunks the entry imports (the viewer's), when the page linked only the
 * entry's own CSS. Django's vite_entry tag should link them; until it walks the manifest's
 * "imports", this adds them from the manifest so the viewer has its layout. */
async function linkImportedCss(): Promise<void> {
  const entry = document.querySelector<HTMLScriptElement>('script[type="module"][src*="/dist/"]');
  if (!entry) return;
  const base = entry.src.slice(0, entry.src.indexOf("/dist/") + "/dist/".length);
  const response = await fetch(`${base}.vite/manifest.json`, { credentials: "same-origin" });
  if (!response.ok) return;
  type Chunk = { file: string; css?: string[]; imports?: string[] };
  const manifest = (await response.json()) as Record<string, Chunk>;
  const seen = new Set<string>();
  const css: string[] = [];
  const walk = (key: string) => {
    if (seen.has(key) || !manifest[key]) return;
    seen.add(key);
    css.push(...(manifest[key].css ?? []));
    (manifest[key].imports ?? []).forEach(walk);
  };
  walk("src/workspace/main.ts");
  const linked = new Set([...document.querySelectorAll<HTMLLinkElement>("link[rel=stylesheet]")].map((l) => l.href));
  await Promise.all(
    css
      .map((file) => new URL(base + file, location.href).href)
      .filter((href) => !linked.has(href))
      .map(
        (href) =>
          new Promise<void>((resolve) => {
            const link = h("link", { rel: "stylesheet", href });
            link.addEventListener("load", () => resolve());
            link.addEventListener("error", () => resolve());
            document.head.append(link);
          }),
      ),
  );
}

async function main(): Promise<void> {
  const app = document.getElementById("app");
  if (!app) return;
  try {
    await linkImportedCss().catch(() => undefined);
    const config = readConfig(app);
    const api = new Api(config.csrfToken);
    const workspace =
      config.mode === "review"
        ? new ReviewWorkspace(app, config, api)
        : new AnnotateWorkspace(app, config, api);
    await workspace.start();
  } catch (err) {
    console.error(err);
    app.prepend(
      h("div", { class: "banner error", role: "alert" }, `The workspace could not start: ${err instanceof Error ? err.message : String(err)}`),
    );
  }
}

void main();
