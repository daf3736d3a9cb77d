/**
 * mesh/keepalive.ts: a peer whose pings go unanswered is dead after `misses`
 * in a row, unless its octets keep arriving (a slow link, where the ping waits
 * behind the parcels it carries).
 */
import assert from "node:assert/strict";
import { KeepAlive } from "../../mesh/keepalive.ts";

const ROUND_MS = 20;

/** Runs a keep-alive of peer "p" whose every ping fails, for `rounds` pings. */
async function failingPings(
  rounds: number,
  heard?: (peer: string, ms: number) => boolean,
): Promise<string[]> {
  const dead: string[] = [];
  let pings = 0;
  const done = Promise.withResolvers<void>();
  const keepAlive = new KeepAlive(
    () => ["p"],
    () => {
      if (++pings === rounds) done.resolve();
      return Promise.reject(new Error("no pong"));
    },
    (peer) => dead.push(peer),
    { intervalMs: ROUND_MS, timeoutMs: 1_000, misses: 2, heard },
  );
  keepAlive.start();
  await done.promise;
  await keepAlive.stop();
  return dead;
}

Deno.test("KeepAlive declares a peer dead after two unanswered pings in a row", async () => {
  // Five failed pings: dead at the second and the fourth (the count starts again).
  assert.deepEqual(await failingPings(5), ["p", "p"]);
});

Deno.test("KeepAlive keeps a peer whose octets keep arriving, though its pings go unanswered", async () => {
  assert.deepEqual(await failingPings(5, () => true), []);
});

Deno.test("KeepAlive counts a ping once the peer was not heard within the ping timeout", async () => {
  const asked: string[] = [];
  const dead = await failingPings(5, (peer, ms) => {
    asked.push(`${peer} ${ms}`);
    return false;
  });
  assert.deepEqual(dead, ["p", "p"], "not heard: the pings count");
  assert.deepEqual(asked.slice(0, 4), ["p 1000", "p 1000", "p 1000", "p 1000"]);
});
