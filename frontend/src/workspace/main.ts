/** Entry point of the workspace bundle: read the page's config and start annotate or review
 * mode. Vite's entry (frontend/src/workspace/main.ts). */

import "./workspace.css";
import { Api } from "../shared/api";
import { AnnotateWorkspace } from "./annotate";
import { h } from "../shared/dom";
import { ReviewWorkspace } from "./review";
import type { WorkspaceConfig } from "./types";

function readConfig(app: HTMLElement): WorkspaceConfig {
  // The Django page embeds it with json_script (#workspace-config) or as data-config.
  const script = document.getElementById("workspace-config");
  const raw = script?.textContent || app.dataset.config;
  if (!raw) throw new Error("The page has no workspace configuration.");
  return JSON.parse(raw) as WorkspaceConfig;
}

async function main(): Promise<void> {
  const app = document.getElementById("app");
  if (!app) return;
  try {
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
