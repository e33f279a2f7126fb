import { describe, expect, it } from "vitest";
import { SliceHeatmaps, type SliceOverlay } from "../slice_heatmaps";

/** A server of slice overlays whose answers arrive when the test says so. */
function server() {
  const asked: number[] = [];
  const waiting = new Map<number, { resolve: (o: SliceOverlay) => void; reject: (e: Error) => void }>();
  const released: string[] = [];
  const fetchSlice = (slice: number) =>
    new Promise<SliceOverlay>((resolve, reject) => {
      asked.push(slice);
      waiting.set(slice, { resolve, reject });
    });
  const answer = async (slice: number) => {
    waiting.get(slice)!.resolve({ slice, instanceId: 100 + slice, url: `blob:${slice}` });
    waiting.delete(slice);
    await new Promise((r) => setTimeout(r, 0));
  };
  const fail = async (slice: number) => {
    waiting.get(slice)!.reject(new Error(`slice ${slice} failed`));
    waiting.delete(slice);
    await new Promise((r) => setTimeout(r, 0));
  };
  const overlays = new SliceHeatmaps(fetchSlice, (url) => released.push(url));
  return { asked, answer, fail, released, overlays };
}

describe("a CT explanation's overlays while scrolling", () => {
  it("fetches the slice it stops on, not every slice a fast scroll passes", async () => {
    const { asked, answer, overlays } = server();
    const first = overlays.want(3);
    const passed = [overlays.want(4), overlays.want(5), overlays.want(6)];
    const last = overlays.want(7);
    await answer(3);
    expect(await first).toBeNull(); // superseded while it arrived
    for (const p of passed) expect(await p).toBeNull();
    expect(asked).toEqual([3, 7]);
    await answer(7);
    expect(await last).toEqual({ slice: 7, instanceId: 107, url: "blob:7" });
    // Kept: scrolling back costs no request, and the slice a scroll passed is fetched then.
    expect(await overlays.want(3)).toEqual({ slice: 3, instanceId: 103, url: "blob:3" });
    const back = overlays.want(5);
    expect(asked).toEqual([3, 7, 5]);
    await answer(5);
    expect((await back)?.instanceId).toBe(105);
    expect(overlays.size).toBe(3);
  });

  it("serves the seeded hottest slice without asking, and says a failed slice's error", async () => {
    const { asked, fail, answer, overlays } = server();
    overlays.seed({ slice: 11, instanceId: 111, url: "blob:hot" });
    expect(await overlays.want(11)).toEqual({ slice: 11, instanceId: 111, url: "blob:hot" });
    const broken = overlays.want(2).then(() => "resolved", (e: Error) => e.message);
    await fail(2);
    expect(await broken).toBe("slice 2 failed");
    const again = overlays.want(2); // asked again on the next scroll
    expect(asked).toEqual([2, 2]);
    await answer(2);
    expect((await again)?.url).toBe("blob:2");
  });

  it("frees every overlay when hidden, and one still arriving when it lands", async () => {
    const { answer, released, overlays } = server();
    overlays.seed({ slice: 0, instanceId: 100, url: "blob:0" });
    const late = overlays.want(1);
    overlays.dispose();
    expect(released).toEqual(["blob:0"]);
    await answer(1);
    expect(await late).toBeNull();
    expect(released).toEqual(["blob:0", "blob:1"]);
    expect(overlays.size).toBe(0);
  });
});
