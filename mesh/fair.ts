/**
 * Takes work from many remote hosts in turns: at most `slots` pieces of work at
 * once, and when more wait, hosts are served round robin. A host that opens many
 * streams (one attacker with many peer ids) gets one turn in each round like
 * any other, so an honest host keeps its share of the relay's CPU: with k busy
 * hosts, each gets about 1/k of it, whatever its number of streams.
 *
 * @module
 */

/** A round-robin gate over hosts. */
export class FairGate {
  #busy = 0;
  /** Waiting work by host. */
  readonly #waiting = new Map<string, (() => void)[]>();
  /** When each host was last given a turn (a counter), so the least recently served goes next. */
  readonly #served = new Map<string, number>();
  #turns = 0;

  constructor(private readonly slots = 2) {}

  /** Waits for `host`'s turn; call the returned function when the work is done. */
  async enter(host: string): Promise<() => void> {
    if (this.#busy >= this.slots || this.#waiting.size > 0) {
      await new Promise<void>((resolve) => {
        const queue = this.#waiting.get(host);
        if (queue) queue.push(resolve);
        else this.#waiting.set(host, [resolve]);
      });
    } else {
      this.#busy++;
      this.#served.set(host, ++this.#turns);
    }
    let left = false;
    return () => {
      if (left) return;
      left = true;
      this.#busy--;
      this.#next();
    };
  }

  /** Work waiting now, by host (for tests and status). */
  get waiting(): number {
    let n = 0;
    for (const queue of this.#waiting.values()) n += queue.length;
    return n;
  }

  #next(): void {
    while (this.#busy < this.slots && this.#waiting.size > 0) {
      // The least recently served waiting host goes next: a host that sends one
      // batch at a time (an honest sender's window) is not kept behind one that
      // always has the next batch queued.
      let host = "";
      let oldest = Infinity;
      for (const candidate of this.#waiting.keys()) {
        const served = this.#served.get(candidate) ?? 0;
        if (served < oldest) [host, oldest] = [candidate, served];
      }
      const queue = this.#waiting.get(host)!;
      const resolve = queue.shift()!;
      if (queue.length === 0) this.#waiting.delete(host);
      this.#served.set(host, ++this.#turns);
      if (this.#served.size > 4096) this.#forgetIdle();
      this.#busy++;
      resolve();
    }
  }

  /** Forgets when idle hosts were served (they start again as never served: first in line). */
  #forgetIdle(): void {
    for (const host of this.#served.keys()) {
      if (!this.#waiting.has(host)) this.#served.delete(host);
      if (this.#served.size <= 2048) break;
    }
  }
}
