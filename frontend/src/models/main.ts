/** Vite entry of the Models page (frontend/templates/frontend/models.html): the page itself
 * (./page.ts) and its charts (./charts.ts), which load again whenever the page sees a cycle
 * finish or a version registered, promoted or rolled back. */

import "./page.css";
import { Api } from "../shared/api";
import { apiUrls } from "../shared/urls";
import { ModelCharts } from "./charts";
import { ModelsPage } from "./page";
import type { ModelsConfig } from "./types";

function main(): void {
  const text = document.getElementById("models-config")?.textContent;
  if (!text) return;
  const config = JSON.parse(text) as ModelsConfig;
  const root = document.getElementById("model-charts");
  const charts = root
    ? new ModelCharts(root, new Api(config.csrfToken), apiUrls.modelDashboard(config.projectId))
    : null;
  void charts?.load();
  void new ModelsPage(config, () => void charts?.load()).start();
}

main();
