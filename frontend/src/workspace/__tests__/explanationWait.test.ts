import { describe, expect, it } from "vitest";
import {
  DEFAULT_INTERVAL_MS,
  MAX_INTERVAL_MS,
  WAITING_MESSAGE,
  retryAfterMs,
  whenComputed,
  type BlobAnswer,
} from "../explanation_wait";

const computing = (retryAfter: string | null = "5"): BlobAnswer => ({
  blob: new Blob(['{"status": "computing"}']),
  headers: new Headers(retryAfter === null ? {} : { "Retry-After": retryAfter }),
  status: 202,
});
const overlay: BlobAnswer = {
  blob: new Blob(["png"]),
  headers: new Headers({ "X-MedLoop-Slice": "3" }),
  status: 200,
};

/** A server answering 202 ``pending`` times, then the overlay; a clock moved by the waits. */
function server(pending: number) {
  let asked = 0;
  let clock = 0;
  const waits: number[] = [];
  const messages: string[] = [];
  return {
    fetchOnce: async () => (++asked > pending ? overlay : computing()),
    options: {
      onWaiting: (message: string) => void messages.push(message),
      sleep: async (ms: number) => {
        waits.push(ms);
        clock += ms;
      },
      now: () => clock,
    },
    asked: () => asked,
    waits,
    messages,
  };
}

describe("waiting for an explanation being computed", () => {
  it("asks again at the server's Retry-After until the overlay arrives, saying so once", async () => {
    const s = server(3);
    const answer = await whenComputed(s.fetchOnce, s.options);
    expect(answer).toBe(overlay);
    expect(s.asked()).toBe(4);
    expect(s.waits).toEqual([5000, 5000, 5000]);
    expect(s.messages).toEqual([WAITING_MESSAGE]);
  });

  it("an overlay already there is drawn at once, with no message", async () => {
    const s = server(0);
    expect(await whenComputed(s.fetchOnce, s.options)).toBe(overlay);
    expect(s.waits).toEqual([]);
    expect(s.messages).toEqual([]);
  });

  it("gives up after the limit with a message saying so", async () => {
    const s = server(1000);
    await expect(whenComputed(s.fetchOnce, { ...s.options, giveUpAfterMs: 60_000 })).rejects.toThrow(
      "The explanation is still being computed after 1 minute; try again later.",
    );
    expect(s.asked()).toBe(13); // asked at 0, 5, ..., 60 s; the next wait would pass the minute
  });

  it("stops asking once the answer is no longer wanted (another toggle, another case)", async () => {
    const s = server(1000);
    let wanted = true;
    const sleep = async (ms: number) => {
      await s.options.sleep(ms);
      if (s.waits.length === 2) wanted = false;
    };
    const answer = await whenComputed(s.fetchOnce, { ...s.options, sleep, wanted: () => wanted });
    expect(answer).toBeNull();
    expect(s.asked()).toBe(2);
  });

  it("rejects with the server's error (a failed computation's 409)", async () => {
    let asked = 0;
    const fetchOnce = async () => {
      if (++asked === 2) throw new Error("Model version 2 cannot be loaded: gone");
      return computing();
    };
    await expect(whenComputed(fetchOnce, { sleep: async () => undefined })).rejects.toThrow(
      "cannot be loaded",
    );
  });

  it("keeps Retry-After within bounds, and uses the default without one", () => {
    expect(retryAfterMs(new Headers({ "Retry-After": "2" }))).toBe(2000);
    expect(retryAfterMs(new Headers({ "Retry-After": "0.1" }))).toBe(1000);
    expect(retryAfterMs(new Headers({ "Retry-After": "3600" }))).toBe(MAX_INTERVAL_MS);
    expect(retryAfterMs(new Headers({ "Retry-After": "soon" }))).toBe(DEFAULT_INTERVAL_MS);
    expect(retryAfterMs(new Headers())).toBe(DEFAULT_INTERVAL_MS);
  });
});
