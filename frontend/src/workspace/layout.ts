/** The workspace skeleton shared by annotate and review modes (fits 1366x768):
 * toolbar on top, banners, then context | viewer with thumbnails | side panels. */

import { h } from "../shared/dom";

export type Layout = {
  root: HTMLElement;
  toolbar: HTMLElement;
  caseInfo: HTMLElement;
  banners: HTMLElement;
  left: HTMLElement;
  viewer: HTMLElement;
  thumbnails: HTMLElement;
  viewerStatus: HTMLElement;
  right: HTMLElement;
};

export function buildLayout(app: HTMLElement, mode: string): Layout {
  const caseInfo = h("div", { class: "case-info", "aria-live": "polite" });
  const toolbar = h("div", { class: "toolbar", role: "toolbar", "aria-label": "Viewer and case actions" });
  const banners = h("div", { class: "banners" });
  const left = h("aside", { class: "left", "aria-label": "Clinical context" });
  const viewer = h("div", { class: "viewer", id: "viewer", tabindex: "0", "aria-label": "Image viewer" });
  const thumbnails = h("div", { class: "thumbnails", id: "thumbnails", "aria-label": "Images of this case" });
  const viewerStatus = h("div", { class: "viewer-status", "aria-live": "off" });
  const right = h("aside", { class: "right", "aria-label": "Annotation" });
  const root = h(
    "div",
    { class: `ws mode-${mode}` },
    h("div", { class: "topbar" }, caseInfo, toolbar),
    banners,
    h(
      "div",
      { class: "ws-main" },
      left,
      h("div", { class: "center", role: "main" }, thumbnails, viewer, viewerStatus),
      right,
    ),
  );
  app.replaceChildren(root);
  return { root, toolbar, caseInfo, banners, left, viewer, thumbnails, viewerStatus, right };
}
