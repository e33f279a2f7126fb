import { describe, expect, it } from "vitest";

import { newestSuggestion } from "../suggestions";
import type { Suggestion } from "../types";

function suggestion(model_version: number, serving: boolean, created_at: string): Suggestion {
  return { model_version, serving, created_at } as unknown as Suggestion;
}

describe("newestSuggestion", () => {
  it("shows the serving version's suggestion over a newer rolled-back one", () => {
    const items = [
      suggestion(2, false, "2026-12-05T10:00:00Z"),
      suggestion(1, true, "2026-12-04T10:00:00Z"),
    ];
    expect(newestSuggestion(items)?.model_version).toBe(1);
  });

  it("shows the newest version's when none serves", () => {
    const items = [
      suggestion(1, false, "2026-12-04T10:00:00Z"),
      suggestion(3, false, "2026-12-05T10:00:00Z"),
      suggestion(2, false, "2026-12-05T11:00:00Z"),
    ];
    expect(newestSuggestion(items)?.model_version).toBe(3);
  });

  it("shows nothing without suggestions", () => {
    expect(newestSuggestion([])).toBeNull();
  });
});
