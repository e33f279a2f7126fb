/** When the person at the screen last did something (a key, a click, a wheel turn). The
 * workspace keeps its leases, and with them the session, alive only while someone is there:
 * an open tab nobody touches must still reach the idle logoff (MEDLOOP_SESSION_IDLE_SECONDS). */

const INPUT_EVENTS = ["pointerdown", "keydown", "wheel"] as const;

export class Activity {
  private last: number;

  constructor(private readonly now: () => number = Date.now) {
    this.last = now();
  }

  /** Count input on ``target`` (capturing, so that no handler can hide it). */
  listen(target: EventTarget): void {
    for (const type of INPUT_EVENTS) {
      target.addEventListener(type, () => this.touch(), { capture: true, passive: true });
    }
  }

  touch(): void {
    this.last = this.now();
  }

  /** True when there was input within the last ``ms`` milliseconds. */
  activeWithin(ms: number): boolean {
    return this.now() - this.last <= ms;
  }
}
