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
  /** Waiting work by host; a Map keeps insertion order, which is the rotation. */
  readonly #waiting = new Map<string, (() => void)[]>();

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
      const [host, queue] = this.#waiting.entries().next().value!;
      const resolve = queue.shift()!;
      // To the back of the rotation, if it has more.
      this.#waiting.delete(host);
      if (queue.length > 0) this.#waiting.set(host, queue);
      this.#busy++;
      resolve();
    }
  }
}
