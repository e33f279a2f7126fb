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
  const FIGURE_NAMES = {
    "boxes.map_50": "mAP@0.5",
    "findings.auroc_macro": "AUROC macro",
    "reports.bleu_4": "BLEU-4",
    "reports.finding_f1_micro": "report finding F1",
    combined: "combined",
  };
  // Stages of work: a cycle at one of them is running whatever an older answer said.
  const WORK_STAGES = new Set(["training", "evaluating", "registering", "scoring", "ranking"]);

  const state = { project: null, versions: [], cycles: [], cycle: null, timer: 0, strategies: {} };
  // Answers about the cycle are applied in the order they were asked: a slow older answer
  // (the list, polled while the cycle's own address answered) never undoes a newer one.
  let asked = 0;
  let applied = 0;
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

  function shownStatus(cycle) {
    return cycle.status === "queued" && WORK_STAGES.has(cycle.stage) ? "running" : cycle.status;
  }

  function figureText(value) {
    return value === null || value === undefined ? "—" : value.toFixed(3);
  }

  function signed(value) {
    if (value === null || value === undefined) return "n/a";
    return `${value >= 0 ? "+" : "−"}${Math.abs(value).toFixed(4)}`;
  }

  function plural(count, word) {
    return `${count} ${word}${count === 1 ? "" : "s"}`;
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
    const shown = shownStatus(cycle);
    status.textContent = shown;
    status.className = `badge ${shown}`;
    status.dataset.status = shown;
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
    fact("cycle-within", withinText(cycle));
    fact("cycle-elapsed", elapsed[shownStatus(cycle)] || `took ${took}`);
    const eta = $("cycle-eta");
    fact("cycle-eta", active ? etaText(cycle) : "");
    eta.title = active && cycle.estimate ? cycle.estimate.basis : "";
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

  // Progress inside the stage: steps of training, cases of scoring (and chunks done).
  function withinText(cycle) {
    const within = cycle.stage_progress || {};
    const chunks = cycle.chunks_total ? ` (${cycle.chunks_done}/${cycle.chunks_total} chunks)` : "";
    if (within.stage === cycle.stage && Number.isInteger(within.total)) {
      if (within.unit === "steps") return `training step ${within.done}/${within.total}`;
      if (within.unit === "cases") return `scored ${within.done}/${within.total} cases${chunks}`;
    }
    return cycle.chunks_total ? `scored ${cycle.chunks_done}/${cycle.chunks_total} chunks` : "";
  }

  function etaText(cycle) {
    const estimate = cycle.estimate;
    if (!estimate) return "";
    if (estimate.seconds === null) {
      return shownStatus(cycle) === "queued" ? "" : "estimating the time left…";
    }
    const left = `about ${duration(estimate.seconds)} left`;
    return estimate.complete ? left : `${left} for ${cycle.stage} (later stages not yet timed)`;
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
        el("td", {}, [badge(shownStatus(cycle))]),
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

  // A figure of the version (the evidence the server explains), else the raw metric.
  function figure(version, path) {
    const figures = (version.evidence || {}).figures || {};
    if (figures[path]) return figures[path];
    const value = metric(version, path);
    return { value, missing: value === null ? "not measured" : "" };
  }

  function validationLabels(version) {
    const count = (version.evidence || {}).validation_labels;
    return Number.isInteger(count) ? count : null;
  }

  // The promotion decision and the inputs it was made on, in words.
  function decisionLines(version) {
    const decision = (version.evidence || {}).decision;
    if (!decision) return { verdict: "—", inputs: [] };
    if (!decision.checked) return { verdict: decision.verdict, inputs: [] };
    const inputs = [];
    const n = decision.validation_labels;
    const value = (v) => (v === null || v === undefined ? "none" : v.toFixed(4));
    if (decision.compared_with !== null && decision.compared_with !== undefined) {
      const against = state.versions.find((v) => v.number === decision.compared_with);
      const own = against ? validationLabels(against) : null;
      const again =
        own !== null && own !== n
          ? ` (v${decision.compared_with} measured again on these labels; its row shows it on its own ${plural(own, "validation label")})`
          : "";
      inputs.push(
        `${decision.metric} ${value(decision.candidate_value)} vs ` +
          `v${decision.compared_with} ${value(decision.serving_value)}, both on the same ` +
          `${plural(n, "validation label")}${again}`,
      );
    } else {
      inputs.push(
        `${decision.metric} ${value(decision.candidate_value)} on ` +
          `${plural(n, "validation label")}; no version was serving`,
      );
    }
    if (n < decision.min_validation_labels) {
      inputs.push(
        `${n} of the ${decision.min_validation_labels} validation labels automatic ` +
          "promotion needs",
      );
    }
    const b = decision.bootstrap;
    if (b) {
      inputs.push(
        `paired bootstrap: difference ${signed(b.difference)}, ` +
          `${Math.round(b.confidence * 100)} % interval [${signed(b.low)}, ${signed(b.high)}] ` +
          `over ${b.resamples_used} resamples (${b.beyond_noise ? "beyond noise" : "not beyond noise"})`,
      );
    } else if (decision.bootstrap_error) {
      inputs.push(`no paired comparison: ${decision.bootstrap_error}`);
    }
    return { verdict: decision.verdict, inputs, reason: decision.reason };
  }

  function renderVersions() {
    const serving = state.versions.find((v) => v.status === "promoted") || null;
    $("setting-serving").querySelector("b").textContent = serving ? `v${serving.number}` : "none";
    const notes = [];
    const rows = state.versions.flatMap((version) => {
      const isServing = version.status === "promoted";
      const status = badge(version.status, isServing ? "serving" : version.status);
      if (isServing) status.title = `promoted ${when(version.promoted_at)}`;
      const metrics = METRICS.map((path) => {
        const { value, missing } = figure(version, path);
        const cell = el("td", {
          text: figureText(value),
          className: "num",
          attrs: { "data-metric": path },
        });
        if (value === null) {
          // "—" never stands alone: a note under the table says why.
          notes.push(`v${version.number} ${FIGURE_NAMES[path]} —: ${missing}`);
          cell.title = missing;
          cell.append(el("sup", { text: String(notes.length), className: "note-ref" }));
        }
        return cell;
      });
      const actions = el("td");
      if (config.canChange && !isServing && version.status !== "failed") {
        const promote = el("button", {
          text: "Promote",
          className: "small",
          attrs: { type: "button", "data-testid": "promote" },
        });
        promote.addEventListener("click", () => confirmChange("promote", version, promote));
        actions.append(promote);
      }
      const labels = validationLabels(version);
      const row = el("tr", { attrs: { "data-version": version.number } }, [
        el("td", { text: `v${version.number}` }),
        el("td", {}, [status]),
        el("td", {
          text: String(version.label_count),
          className: "num",
          attrs: { "data-testid": "label-count" },
        }),
        el("td", { text: version.strategy || "—" }),
        el("td", {
          text: labels === null ? "—" : String(labels),
          className: "num",
          attrs: { "data-testid": "validation-labels" },
        }),
        ...metrics,
        el("td", { text: when(version.created_at) }),
        actions,
      ]);
      const sha = (version.weights_sha256 || "").slice(0, 12);
      row.title = `${version.model_kind} · ${version.code_version} · sha256 ${sha}`;
      row.classList.toggle("serving", isServing);
      const lines = decisionLines(version);
      const decision = el("td", { attrs: { colspan: "10", "data-testid": "decision" } }, [
        el("span", { text: "Promotion check: " }),
        el("b", { text: lines.verdict }),
      ]);
      if (lines.inputs.length) decision.append(el("span", { text: ` · ${lines.inputs.join(" · ")}` }));
      if (lines.reason) decision.title = lines.reason;
      const decisionRow = el("tr", { className: "decision", attrs: { "data-decision": version.number } }, [
        decision,
      ]);
      decisionRow.classList.toggle("serving", isServing);
      return [row, decisionRow];
    });
    document.querySelector("#versions tbody").replaceChildren(...rows);
    $("versions-empty").hidden = rows.length > 0;
    $("figure-notes").replaceChildren(...notes.map((text) => el("li", { text })));
    $("figure-notes").hidden = notes.length === 0;

    const rollback = $("rollback");
    if (rollback) {
      const previous = previousServing(serving);
      rollback.disabled = !previous || !serving;
      rollback.textContent = previous && serving ? `Roll back to v${previous.number}` : "Roll back";
      state.rollbackTo = previous && serving ? previous : null;
    }
  }

  // --- confirmation ---------------------------------------------------------------------

  // The paired comparison between the two versions, from whichever of them was checked
  // against the other when its cycle ran.
  function pairedText(target, serving) {
    if (!serving) return "No version serves now: nothing to compare with.";
    for (const [newer, older] of [
      [target, serving],
      [serving, target],
    ]) {
      const decision = (newer.evidence || {}).decision || {};
      if (decision.checked && decision.compared_with === older.number) {
        const n = plural(decision.validation_labels, "validation label");
        const b = decision.bootstrap;
        const value = (v) => (v === null || v === undefined ? "none" : v.toFixed(4));
        let text =
          `When v${newer.number} was trained, both were measured on the same ${n}: ` +
          `${decision.metric} v${newer.number} ${value(decision.candidate_value)}, ` +
          `v${older.number} ${value(decision.serving_value)}. `;
        text += b
          ? `Paired bootstrap of v${newer.number} − v${older.number}: ${signed(b.difference)}, ` +
            `${Math.round(b.confidence * 100)} % interval [${signed(b.low)}, ${signed(b.high)}] ` +
            `over ${b.resamples_used} resamples: ${b.beyond_noise ? "a gain beyond noise" : "no gain beyond noise"}.`
          : `No paired bootstrap: ${decision.bootstrap_error || decision.reason}.`;
        return `${text} The guard on v${newer.number}: ${decision.verdict}.`;
      }
    }
    const decision = (target.evidence || {}).decision || {};
    const other = decision.compared_with ? `, only with v${decision.compared_with}` : "";
    return (
      `No paired comparison between v${target.number} and v${serving.number}: ` +
      `neither was checked against the other${other}.`
    );
  }

  function renderConfirmation(action, target, serving) {
    const verb = action === "promote" ? `Promote v${target.number}` : `Roll back to v${target.number}`;
    $("confirm-title").textContent = `${verb}?`;
    $("confirm-effect").textContent = serving
      ? `v${target.number} will serve every annotator instead of v${serving.number}; ` +
        "the open cases are scored again and the queue re-ranked."
      : `v${target.number} will serve every annotator.`;
    const shown = serving ? [serving, target] : [target];
    const head = $("confirm-figures").querySelector("thead tr");
    head.replaceChildren(
      el("th", { text: "Validation figure" }),
      ...shown.map((v) =>
        el("th", {
          text: v === serving ? `v${v.number} (serving now)` : `v${v.number}`,
          className: "num",
          attrs: { "data-version": v.number },
        }),
      ),
    );
    const metricName = state.project ? state.project.promotion_metric : "";
    const paths = [...new Set([...METRICS, metricName].filter(Boolean))];
    const rows = paths.map((path) =>
      el("tr", { attrs: { "data-metric": path } }, [
        el("th", { text: FIGURE_NAMES[path] || path }),
        ...shown.map((v) => {
          const { value, missing } = figure(v, path);
          const cell = el("td", { text: figureText(value), className: "num", attrs: { "data-version": v.number } });
          if (value === null) cell.append(el("small", { text: ` (${missing})`, className: "why" }));
          return cell;
        }),
      ]),
    );
    rows.push(
      el("tr", { attrs: { "data-metric": "validation_labels" } }, [
        el("th", { text: "Validation labels" }),
        ...shown.map((v) => {
          const n = validationLabels(v);
          return el("td", {
            text: n === null ? "—" : String(n),
            className: "num",
            attrs: { "data-version": v.number },
          });
        }),
      ]),
    );
    $("confirm-figures").querySelector("tbody").replaceChildren(...rows);
    const counts = shown.map(validationLabels);
    const differ = serving && counts[0] !== counts[1];
    $("confirm-warning").textContent = differ
      ? `Each version's figures were measured on the validation labels of its own cycle ` +
        `(${counts.map((n) => (n === null ? "none" : n)).join(" and ")}): they are not measured ` +
        "on the same cases."
      : "";
    $("confirm-warning").hidden = !differ;
    $("confirm-paired").textContent = pairedText(target, serving);
    $("confirm-ok").textContent = verb;
  }

  function confirmChange(action, target, button) {
    const serving = state.versions.find((v) => v.status === "promoted") || null;
    renderConfirmation(action, target, serving === target ? null : serving);
    const dialog = $("confirm");
    dialog.returnValue = "";
    dialog.onclose = () => {
      if (dialog.returnValue !== "confirm") return;
      if (action === "promote") act(button, url("promote", { number: target.number }));
      else act(button, url("rollback"), { to: target.number });
    };
    dialog.showModal();
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
    const ticket = ++asked;
    try {
      const [project, versions, cycles] = await Promise.all([
        api(url("project")),
        api(url("versions")),
        api(url("cycles")),
      ]);
      state.project = project;
      state.versions = versions;
      state.cycles = cycles;
      // The panel follows the active cycle, else shows how the newest one ended; an answer
      // older than the one shown leaves the panel as it is.
      if (ticket > applied) {
        applied = ticket;
        state.cycle = cycles.find(isActive) || cycles[0] || null;
      }
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
    const ticket = ++asked;
    try {
      const cycle = await api(url("cycle", { id: known.id }));
      if (ticket > applied) {
        applied = ticket;
        state.cycle = cycle;
        // The row of Recent cycles follows too: never "queued" there while it trains.
        state.cycles = state.cycles.map((c) => (c.id === cycle.id ? cycle : c));
        renderCycle();
        renderCycles();
      }
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
    const ticket = ++asked;
    try {
      const cycle = await api(url("cycles"), { method: "POST" });
      if (ticket > applied) {
        applied = ticket;
        state.cycle = cycle;
        renderCycle();
      }
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
    if (rollback) {
      rollback.addEventListener("click", () => {
        if (state.rollbackTo) confirmChange("rollback", state.rollbackTo, rollback);
      });
    }
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
