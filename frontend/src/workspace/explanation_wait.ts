/** Waiting for an explanation the server is still computing. A model that reads volumes (the CT
 * detector) has its heatmap drawn by a background task, not by the request: until it is done,
 * GET /api/cases/{id}/explanation/ answers 202 with Retry-After. This asks again at the pace the
 * server names (within bounds), stops when nobody wants the answer any more, and gives up after
 * a while with a message saying so. No DOM: the caller shows the message. */

/** An answer of Api.blob. */
export type BlobAnswer = { blob: Blob; headers: Headers; status: number };

export type WaitOptions = {
  /** Called once, at the first 202, with the message to show while waiting. */
  onWaiting?: (message: string) => void;
  /** False once the answer is no longer wanted (another toggle, another case): stop asking. */
  wanted?: () => boolean;
  /** Milliseconds before giving up (default GIVE_UP_AFTER_MS). */
  giveUpAfterMs?: number;
  /** For tests: how to wait, and the clock. */
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
};

export const WAITING_MESSAGE = "Explanation being computed…";
/** Between asks: the server's Retry-After, else the default, never faster or slower than these. */
export const DEFAULT_INTERVAL_MS = 3_000;
export const MIN_INTERVAL_MS = 1_000;
export const MAX_INTERVAL_MS = 15_000;
/** A 300-slice series takes over a minute on a CPU worker, longer behind a queue of scoring. */
export const GIVE_UP_AFTER_MS = 5 * 60_000;

/** The wait before asking again: Retry-After (seconds) within bounds, else the default. */
export function retryAfterMs(headers: Headers): number {
  const seconds = Number(headers.get("Retry-After") ?? "");
  const ms = Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : DEFAULT_INTERVAL_MS;
  return Math.min(Math.max(ms, MIN_INTERVAL_MS), MAX_INTERVAL_MS);
}

const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The first answer of ``fetchOnce`` that is not a 202, or null when it stopped being wanted
 * while waiting. Rejects with ``fetchOnce``'s error (the server's 4xx), or when the
 * explanation is still being computed after ``giveUpAfterMs``. */
export async function whenComputed(
  fetchOnce: () => Promise<BlobAnswer>,
  options: WaitOptions = {},
): Promise<BlobAnswer | null> {
  const { onWaiting, wanted = () => true, sleep = pause, now = Date.now } = options;
  const giveUpAfter = options.giveUpAfterMs ?? GIVE_UP_AFTER_MS;
  const started = now();
  let announced = false;
  for (;;) {
    const answer = await fetchOnce();
    if (answer.status !== 202) return answer;
    if (!wanted()) return null;
    if (!announced) {
      announced = true;
      onWaiting?.(WAITING_MESSAGE);
    }
    const wait = retryAfterMs(answer.headers);
    if (now() - started + wait > giveUpAfter) {
      const minutes = Math.round(giveUpAfter / 60_000);
      throw new Error(
        `The explanation is still being computed after ${minutes} minute${minutes === 1 ? "" : "s"}; try again later.`,
      );
    }
    await sleep(wait);
    if (!wanted()) return null;
  }
}
