/**
 * The page's live feed: one server-sent event stream per open page, carrying
 * new mail, delivery changes, peers, progress, and the end of the session.
 *
 * @module
 */
import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import type { RelaymailEventName } from "../core/context.ts";

/** Events pushed to the page. */
export type PushEvent =
  | RelaymailEventName
  | "channel-changed"
  | "peers"
  | "status"
  | "progress"
  | "daemon"
  | "session";

/** How often an idle stream sends a comment line, which keeps sockets honest. */
export const KEEP_ALIVE_MS = 15_000;

interface Stream {
  push(event: PushEvent, data: unknown): void;
  /** Ends the stream once what was pushed is sent. */
  end(): void;
}

/** Every open event stream. */
export class EventStreams {
  readonly #streams = new Set<Stream>();
  #closed = false;

  /** How many pages are listening. */
  get size(): number {
    return this.#streams.size;
  }

  /** Sends `event` to every open stream. */
  push(event: PushEvent, data: unknown): void {
    for (const stream of this.#streams) stream.push(event, data);
  }

  /** Sends `event` to every open stream, then ends them (the pages may connect again). */
  endAll(event: PushEvent, data: unknown): void {
    for (const stream of this.#streams) {
      stream.push(event, data);
      stream.end();
    }
  }

  /** Like {@linkcode endAll}, and streams opened from now on end as soon as they are idle. */
  close(event: PushEvent, data: unknown): void {
    this.#closed = true;
    this.endAll(event, data);
    this.#streams.clear();
  }

  /**
   * The answer to `GET /api/events`: `hello` first, then what is pushed. An idle
   * stream asks `stillAllowed()` every {@linkcode KEEP_ALIVE_MS} (which, for a
   * session, counts as a use of it) and ends with a `session` event when not.
   */
  respond(c: Context, hello: unknown, stillAllowed: () => boolean): Response {
    return streamSSE(c, async (sse) => {
      const queue: { event: PushEvent; data: unknown }[] = [];
      let wake: (() => void) | null = null;
      let ended = false;
      const stream: Stream = {
        push(event, data) {
          queue.push({ event, data });
          wake?.();
        },
        end() {
          ended = true;
          wake?.();
        },
      };
      this.#streams.add(stream);
      sse.onAbort(() => stream.end());
      await sse.writeSSE({ event: "hello", data: JSON.stringify(hello) });
      while (!sse.aborted && !sse.closed) {
        if (queue.length === 0) {
          if (ended || this.#closed) break;
          let timer: ReturnType<typeof setTimeout> | undefined;
          await new Promise<void>((resolve) => {
            wake = resolve;
            timer = setTimeout(resolve, KEEP_ALIVE_MS);
          });
          clearTimeout(timer);
          wake = null;
          if (queue.length === 0) {
            if (ended) break;
            if (!stillAllowed()) {
              await sse.writeSSE({ event: "session", data: JSON.stringify({ ended: true }) });
              break;
            }
            await sse.write(": keep-alive\n\n");
            continue;
          }
        }
        const { event, data } = queue.shift()!;
        await sse.writeSSE({ event, data: JSON.stringify(data) });
      }
      this.#streams.delete(stream);
      await sse.close();
    });
  }
}
