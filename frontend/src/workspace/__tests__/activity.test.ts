import { describe, expect, it } from "vitest";
import { Activity } from "../activity";

describe("Activity", () => {
  it("is active only within the window after the last input", () => {
    let now = 1_000;
    const activity = new Activity(() => now);
    expect(activity.activeWithin(240_000)).toBe(true);
    now += 240_001;
    expect(activity.activeWithin(240_000)).toBe(false);
    activity.touch();
    now += 10;
    expect(activity.activeWithin(240_000)).toBe(true);
  });

  it("counts keys, clicks and wheel turns on the target", () => {
    let now = 0;
    const activity = new Activity(() => now);
    const target = new EventTarget();
    activity.listen(target);
    for (const type of ["keydown", "pointerdown", "wheel"]) {
      now += 500_000;
      expect(activity.activeWithin(1000)).toBe(false);
      target.dispatchEvent(new Event(type));
      expect(activity.activeWithin(1000)).toBe(true);
    }
    now += 500_000;
    target.dispatchEvent(new Event("mousemove"));
    expect(activity.activeWithin(1000)).toBe(false);
  });
});
