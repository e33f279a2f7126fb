import { describe, expect, it, vi } from "vitest";
import { ApiError } from "../api";
import { PageStatus, required } from "../page";

function fakePage() {
  const attributes: Record<string, string> = {};
  const root = { dataset: {} as DOMStringMap, setAttribute: (k: string, v: string) => (attributes[k] = v) };
  const alert = { textContent: "", hidden: true };
  const status = new PageStatus(root as unknown as HTMLElement, alert as unknown as HTMLElement);
  return { status, root, alert, attributes };
}

describe("PageStatus", () => {
  it("marks the page busy while loading or saving, not when ready", () => {
    const { status, root, attributes } = fakePage();
    status.set("saving");
    expect([root.dataset.state, attributes["aria-busy"], status.state]).toEqual(["saving", "true", "saving"]);
    status.set("ready");
    expect(attributes["aria-busy"]).toBe("false");
  });

  it("shows a refusal's message and puts the page in error", () => {
    const { status, alert } = fakePage();
    vi.spyOn(console, "error").mockImplementation(() => undefined);
    status.fail(new ApiError(403, "permission_denied", "You may not.", null));
    expect([alert.textContent, alert.hidden, status.state]).toEqual(["You may not.", false, "error"]);
    status.hide();
    expect(alert.hidden).toBe(true);
  });
});

describe("required", () => {
  it("names the selector a template lacks", () => {
    const root = { querySelector: () => null } as unknown as ParentNode;
    expect(() => required(root, "#alert")).toThrow("missing #alert");
  });
});
