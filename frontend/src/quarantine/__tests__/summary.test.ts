import { describe, expect, it } from "vitest";
import { heldSummary } from "../summary";

describe("the held-images summary", () => {
  it("counts the held images in words", () => {
    expect(heldSummary(0)).toBe("No images are held for review.");
    expect(heldSummary(1)).toBe("1 image is held for review.");
    expect(heldSummary(50)).toBe("50 images are held for review.");
  });

  it("says when the list shows only the oldest of them", () => {
    expect(heldSummary(700, 500)).toBe(
      "700 images are held for review. The oldest 500 are shown; decide on them to see the rest.",
    );
  });
});
