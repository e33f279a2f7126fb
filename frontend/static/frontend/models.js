// The model owner's page (frontend/templates/frontend/models.html): retraining cycles followed
// live, the registry of model versions, promote and roll back. Plain JavaScript, no build step;
// everything is read and done through the REST API with the session cookie and CSRF token.
"use strict";

(() => {
  const config = JSON.parse(document.getElementById("models-config").textContent);
  const $ = (id) => document.getElementById(id);
  const ACTIVE = new Set(["queued", "running"]);
  const POLL_ACTIVE_MS = 1000; // a running cycle: its progress every second
  const POLL_IDLE_MS = 15000; // otherwise: notice cycles started elsewhere (automatic trigger)
  const LOG_LINES = 6;
  const RECENT_CYCLES = 8;
  const METRICS = ["boxes.map_50", "findings.auroc_macro", "reports.bleu_4"];

  const state = { project: null, versions: [], cycles: [], cycle: null, timer: 0, strategies: {} };
  // What the charts (src/dashboards/models.ts) draw from: versions and finished cycles.
  let drawnFrom = null;

  class ApiError extends Error {
    constructor(status, message, body) {
      super(message);
      this.status = status;
      this.body = body;
    }
  }

  function url(name, params = {}) {
    return config.urls[name].replace(/\{(\w+)\}/g, (_, key) => encodeURIComponent(params[key]));
  }

  async function api(address, { method = "GET", body } = {}) {
    const headers = { Accept: "application/json" };
    if (method !== "GET") headers["X-CSRFToken"] = config.csrfToken;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(address, {
        method,
        headers,
        credentials: "same-origin",
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (error) {
      throw new ApiError(0, `The server cannot be reached (${error.message}).`, {});
    }
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const message = data.message || `${response.status} ${response.statusText}`;
      throw new ApiError(response.status, message, data);
    }
    return data;
  }

  // --- alert ------------------------------------------------------------------------------

  function showError(message) {
    $("alert-message").textContent = message;
    $("alert").hidden = false;
  }

  function clearError() {
    $("alert").hidden = true;
    $("alert-message").textContent = "";
  }

  // --- formatting -------------------------------------------------------------------------

  function el(tag, { text, className, attrs } = {}, children = []) {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    if (className) node.className = className;
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    for (const child of children) node.append(child);
    return node;
  }

  function metric(version, path) {
    let value = (version.metrics || {}).validation;
    for (const key of path.split(".")) {
      value = value && typeof value === "object" ? value[key] : undefined;
    }
    // pycocotools reports -1 where there is no ground truth: not a score.
    return typeof value === "number" && Number.isFinite(value) && value >= 0 ? value : null;
  }

  function when(iso) {
    if (!iso) return "—";
    const date = new Date(iso);
    const day = date.toLocaleDateString(undefined, { month: "short", day: "numeric" });
    const time = date.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
    return `${day}, ${time}`;
  }

  function duration(seconds) {
    if (seconds === null || !Number.isFinite(seconds)) return "—";
    const s = Math.max(0, Math.round(seconds));
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
    return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  }

  function cycleSeconds(cycle) {
    const start = cycle.started_at || cycle.created_at;
    const end = cycle.finished_at ? new Date(cycle.finished_at) : new Date();
    return start ? (end - new Date(start)) / 1000 : null;
  }

  function badge(status, text = status) {
    return el("span", { text, className: `badge ${status}`, attrs: { "data-status": status } });
  }

  function isActive(cycle) {
    return Boolean(cycle) && ACTIVE.has(cycle.status);
  }

  // --- rendering --------------------------------------------------------------------------

  function renderProject() {
    const project = state.project;
    if (!project) return;
    $("project-name").textContent = project.name;
    const strategy = $("setting-strategy");
    strategy.querySelector("b").textContent = project.acquisition_strategy;
    strategy.title = state.strategies[project.acquisition_strategy] || "";
    $("setting-metric").querySelector("b").textContent = project.promotion_metric;
    $("setting-auto-promote").querySelector("b").textContent = project.auto_promote ? "on" : "off";
    for (const th of document.querySelectorAll("#versions th[data-metric]")) {
      const primary = th.dataset.metric === project.promotion_metric;
      th.classList.toggle("primary", primary);
      th.title = primary ? "The promotion metric" : "";
    }
  }

  function renderCycle() {
    const cycle = state.cycle;
    const active = isActive(cycle);
    const retrain = $("retrain");
    if (retrain) {
      retrain.disabled = active;
      retrain.title = active ? "A retraining cycle is running" : "Train a new version now";
    }
    $("cycle-empty").hidden = Boolean(cycle);
    $("cycle-body").hidden = !cycle;
    $("cycle-status").hidden = !cycle;
    $("cycle-cancel").hidden = !(cycle && active && config.canChange);
    if (!cycle) {
      $("cycle-title").textContent = "Retraining";
      $("cycle-stage").textContent = "";
      return;
    }
    $("cycle-title").textContent = `Cycle ${cycle.id}`;
    const status = $("cycle-status");
    status.textContent = cycle.status;
    status.className = `badge ${cycle.status}`;
    status.dataset.status = cycle.status;
    // The stage adds to the status badge only while running, and as "done".
    $("cycle-stage").textContent = cycle.stage && cycle.stage !== cycle.status ? cycle.stage : "";

    const progress = Math.min(Math.max(Number(cycle.progress) || 0, 0), 100);
    const bar = $("cycle-progress");
    bar.className = `bar ${cycle.status}`;
    bar.setAttribute("aria-valuenow", String(progress));
    bar.querySelector(".fill").style.width = `${progress}%`;
    bar.querySelector(".label").textContent = `${Math.round(progress)} %`;

    const took = duration(cycleSeconds(cycle));
    const elapsed = {
      queued: `waiting for a worker (${took})`,
      running: `running for ${took}`,
    };
    fact("cycle-labels", cycle.label_count ? `${cycle.label_count} labels` : "");
    fact(
      "cycle-chunks",
      cycle.chunks_total ? `scored ${cycle.chunks_done}/${cycle.chunks_total} chunks` : "",
    );
    fact("cycle-elapsed", elapsed[cycle.status] || `took ${took}`);
    fact("cycle-made", cycle.model_version_number ? `made v${cycle.model_version_number}` : "");
    // Log lines start with the date: the time is enough here.
    const lines = (cycle.log || [])
      .slice(-LOG_LINES)
      .map((line) => line.replace(/^\d{4}-\d\d-\d\d /, ""));
    if (cycle.status === "failed" && cycle.error) lines.push(`error: ${cycle.error}`);
    const log = $("cycle-log");
    log.textContent = lines.join("\n");
    log.scrollTop = log.scrollHeight;
  }

  function fact(id, text) {
    $(id).textContent = text;
    $(id).hidden = !text;
  }

  function renderCycles() {
    const body = document.querySelector("#cycles tbody");
    const rows = state.cycles.slice(0, RECENT_CYCLES).map((cycle) => {
      const by = cycle.trigger === "manual" && cycle.triggered_by ? ` · ${cycle.triggered_by}` : "";
      const made = cycle.model_version_number ? `v${cycle.model_version_number}` : "—";
      const took = isActive(cycle) ? "…" : duration(cycleSeconds(cycle));
      return el("tr", { attrs: { "data-cycle": cycle.id } }, [
        el("td", { text: `#${cycle.id}`, attrs: { title: `queued ${when(cycle.created_at)}` } }),
        el("td", {}, [badge(cycle.status)]),
        el("td", { text: `${cycle.trigger}${by}` }),
        el("td", { text: made }),
        el("td", { text: took, className: "num" }),
      ]);
    });
    body.replaceChildren(...rows);
    $("cycles-empty").hidden = rows.length > 0;
  }

  function previousServing(serving) {
    const earlier = state.versions.filter(
      (v) => v.promoted_at && v.status !== "failed" && (!serving || v.id !== serving.id),
    );
    earlier.sort((a, b) => new Date(b.promoted_at) - new Date(a.promoted_at));
    return earlier[0] || null;
  }

  function renderVersions() {
    const serving = state.versions.find((v) => v.status === "promoted") || null;
    $("setting-serving").querySelector("b").textContent = serving ? `v${serving.number}` : "none";
    const rows = state.versions.map((version) => {
      const isServing = version.status === "promoted";
      const status = badge(version.status, isServing ? "serving" : version.status);
      if (isServing) status.title = `promoted ${when(version.promoted_at)}`;
      const metrics = METRICS.map((path) => {
        const value = metric(version, path);
        const text = value === null ? "—" : value.toFixed(3);
        return el("td", { text, className: "num", attrs: { "data-metric": path } });
      });
      const actions = el("td");
      if (config.canChange && !isServing && version.status !== "failed") {
        const promote = el("button", {
          text: "Promote",
          className: "small",
          attrs: { type: "button", "data-testid": "promote" },
        });
        const address = url("promote", { number: version.number });
        promote.addEventListener("click", () => act(promote, address));
        actions.append(promote);
      }
      const row = el("tr", { attrs: { "data-version": version.number } }, [
        el("td", { text: `v${version.number}` }),
        el("td", {}, [status]),
        el("td", {
          text: String(version.label_count),
          className: "num",
          attrs: { "data-testid": "label-count" },
        }),
        el("td", { text: version.strategy || "—" }),
        ...metrics,
        el("td", { text: when(version.created_at) }),
        actions,
      ]);
      const sha = (version.weights_sha256 || "").slice(0, 12);
      row.title = `${version.model_kind} · ${version.code_version} · sha256 ${sha}`;
      row.classList.toggle("serving", isServing);
      return row;
    });
    document.querySelector("#versions tbody").replaceChildren(...rows);
    $("versions-empty").hidden = rows.length > 0;

    const rollback = $("rollback");
    if (rollback) {
      const previous = previousServing(serving);
      rollback.disabled = !previous || !serving;
      rollback.textContent = previous && serving ? `Roll back to v${previous.number}` : "Roll back";
    }
  }

  // --- loading and polling ----------------------------------------------------------------

  // A cycle finished, or a version was registered, promoted or rolled back: the page's charts
  // listen for this event and fetch their numbers again.
  function announceChanges() {
    const signature = JSON.stringify([
      state.versions.map((v) => [v.number, v.status]),
      state.cycles.filter((c) => !isActive(c)).map((c) => [c.id, c.status]),
    ]);
    if (drawnFrom !== null && signature !== drawnFrom) {
      document.dispatchEvent(new CustomEvent("medloop:models-changed"));
    }
    drawnFrom = signature;
  }

  function schedule() {
    clearTimeout(state.timer);
    const active = isActive(state.cycle);
    state.timer = setTimeout(active ? pollCycle : refresh, active ? POLL_ACTIVE_MS : POLL_IDLE_MS);
  }

  async function refresh() {
    try {
      const [project, versions, cycles] = await Promise.all([
        api(url("project")),
        api(url("versions")),
        api(url("cycles")),
      ]);
      state.project = project;
      state.versions = versions;
      state.cycles = cycles;
      // The panel follows the active cycle, else shows how the newest one ended.
      state.cycle = cycles.find(isActive) || cycles[0] || null;
      renderProject();
      renderVersions();
      renderCycles();
      renderCycle();
      announceChanges();
    } catch (error) {
      showError(error.message);
    }
    schedule();
  }

  async function pollCycle() {
    const known = state.cycle;
    try {
      const cycle = await api(url("cycle", { id: known.id }));
      state.cycle = cycle;
      renderCycle();
      if (!isActive(cycle) || cycle.model_version_number !== known.model_version_number) {
        await refresh(); // finished, or registered a version: the tables change
        return;
      }
    } catch (error) {
      showError(error.message);
    }
    schedule();
  }

  async function loadStrategies() {
    try {
      const items = await api(url("strategies"));
      state.strategies = Object.fromEntries(items.map((s) => [s.name, s.description]));
      renderProject();
    } catch {
      // Only the strategy's description (a tooltip) depends on it.
    }
  }

  // --- actions ----------------------------------------------------------------------------

  async function act(button, address, body) {
    button.disabled = true;
    clearError();
    try {
      return await api(address, { method: "POST", body });
    } catch (error) {
      showError(error.message);
      return null;
    } finally {
      button.disabled = false;
      await refresh();
    }
  }

  async function retrain() {
    const button = $("retrain");
    button.disabled = true;
    clearError();
    try {
      state.cycle = await api(url("cycles"), { method: "POST" });
      renderCycle();
    } catch (error) {
      showError(error.message);
    }
    await refresh();
  }

  function wire() {
    $("alert-close").addEventListener("click", clearError);
    const retrainButton = $("retrain");
    if (retrainButton) retrainButton.addEventListener("click", retrain);
    const rollback = $("rollback");
    if (rollback) rollback.addEventListener("click", () => act(rollback, url("rollback"), {}));
    $("cycle-cancel").addEventListener("click", (event) => {
      if (state.cycle) act(event.currentTarget, url("cancel", { id: state.cycle.id }));
    });
  }

  wire();
  loadStrategies();
  refresh().then(() => {
    $("models-page").dataset.state = "ready";
  });
})();
