import { describe, expect, it } from "vitest";

import { REVIEW_ORDERINGS, percent, reviewQueueQuery } from "../review_query";
import { modelStatusLines, noPendingText } from "../suggestions";
import type { ServedSuggestion } from "../types";

function served(state: ServedSuggestion["state"], withheld: string[] = []): ServedSuggestion {
  return {
    state,
    message: `state ${state}`,
    suggestion: null,
    withheld: withheld.map((message) => ({ kinds: ["boxes"], finding: "nodule", message })),
  };
}

describe("noPendingText", () => {
  it("says all suggestions are decided only when the model suggested boxes", () => {
    expect(noPendingText(served("shown"), 2)).toBe("All suggestions decided.");
    expect(noPendingText(served("shown"), 0)).toBe("The model suggests no boxes for this case.");
  });

  it("says the model is still learning, never that all suggestions are decided", () => {
    expect(noPendingText(served("learning"), 0)).toBe("The model is still learning: no suggestions yet.");
    expect(noPendingText(served("none"), 0)).toBe("No model suggestion for this case yet.");
    expect(noPendingText(null, 0)).toBe("No suggestions for this case.");
  });

  it("says a locked test set case is read without the model", () => {
    expect(noPendingText(served("blinded"), 0)).toBe("No model suggestions: this case is in the locked test set.");
  });
});

describe("modelStatusLines", () => {
  it("lists the server's message and one line per class held back", () => {
    const lines = modelStatusLines(served("learning", ["The model is still learning nodule: 2 of 5."]));
    expect(lines.headline).toBe("state learning");
    expect(lines.lines).toEqual(["The model is still learning nodule: 2 of 5."]);
    expect(modelStatusLines(null)).toEqual({ headline: "", lines: [] });
  });
});

describe("reviewQueueQuery", () => {
  it("sends the ordering and the filter's ranges", () => {
    expect(reviewQueueQuery("-change", "changed")).toBe("?limit=100&ordering=-change&change_min=0.5");
    expect(reviewQueueQuery("confidence", "sure")).toBe("?limit=100&ordering=confidence&confidence_min=0.8");
  });

  it("falls back to the defaults for unknown names", () => {
    expect(reviewQueueQuery("score", "nope")).toBe("?limit=100&ordering=submitted");
    expect(Object.keys(REVIEW_ORDERINGS)).toContain("-confidence");
  });

  it("shows figures as percentages", () => {
    expect(percent(0.456)).toBe("46%");
    expect(percent(null)).toBe("—");
  });
});
