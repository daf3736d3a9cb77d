/**
 * Parcels the endpoint owes its contacts (receipts, pairing answers, renewed
 * PDAs). They are recorded as jobs in the same transaction as the event that
 * caused them and turned into parcels afterwards, because building a parcel
 * needs asynchronous cryptography that cannot run inside a SQLite transaction.
 * A crash in between loses nothing: the job is still there at the next run.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { emit, type NodeContext } from "./context.ts";
import type { IdentityManager } from "./identity.ts";
import { makeParcel, type Outbox, type ParcelKind } from "./outbox.ts";
import { encodePairing, encodeReceipt, MessageType } from "./protocol/messages.ts";

/** Kinds of job. */
export type JobKind = "receipt" | "pairing-accept" | "pda-path" | "connection-params";

interface JobRow {
  id: number;
  kind: JobKind;
  peer_id: string;
  data: string;
}

/** Most message ids one receipt parcel acknowledges. */
const RECEIPT_BATCH = 1000;

/** Another process did a job first (its transaction is rolled back). */
class JobTakenError extends Error {}

/** The durable queue of parcels to build. */
export class Jobs {
  #running: Promise<number> | null = null;

  constructor(
    private readonly ctx: NodeContext,
    private readonly identity: IdentityManager,
    private readonly outbox: Outbox,
  ) {}

  /** Records a job; synchronous, for use inside a transaction. Repeats are ignored. */
  add(kind: JobKind, peerId: string, data = ""): void {
    this.ctx.db.run(
      "INSERT OR IGNORE INTO jobs (kind, peer_id, data, created_at) VALUES (?, ?, ?, ?)",
      kind,
      peerId,
      data,
      this.ctx.now().getTime(),
    );
  }

  /** Turns pending jobs into parcels; returns how many parcels it queued. */
  run(): Promise<number> {
    // One run at a time, so that no job becomes two parcels.
    this.#running ??= this.#run().finally(() => (this.#running = null));
    return this.#running;
  }

  async #run(): Promise<number> {
    const jobs = this.ctx.db.all<JobRow>("SELECT id, kind, peer_id, data FROM jobs ORDER BY id");
    if (jobs.length === 0) return 0;
    let queued = 0;
    const receipts = new Map<string, JobRow[]>();
    for (const job of jobs) {
      if (job.kind === "receipt") {
        const batch = receipts.get(job.peer_id);
        if (batch) batch.push(job);
        else receipts.set(job.peer_id, [job]);
        continue;
      }
      // A pairing accept's data is its connection parameters, then the PDAs issued
      // ahead, each in base64, separated by spaces.
      const [data, ...authorizations] = job.data.split(" ").map((part) =>
        new Uint8Array(Buffer.from(part, "base64"))
      );
      const [type, content] = job.kind === "pairing-accept"
        ? [
          MessageType.PAIRING_ACCEPT,
          encodePairing({ connectionParams: data, nameHint: this.identity.name, authorizations }),
        ]
        : job.kind === "connection-params"
        ? [MessageType.CONNECTION_PARAMS, data]
        : [MessageType.PDA_PATH, data];
      queued += await this.#emit(job.peer_id, job.kind, type, content, [job.id]);
    }
    for (const [peerId, batch] of receipts) {
      for (let start = 0; start < batch.length; start += RECEIPT_BATCH) {
        const slice = batch.slice(start, start + RECEIPT_BATCH);
        const content = encodeReceipt({
          messageIds: slice.map((job) => job.data),
          receivedAt: this.ctx.now(),
        });
        queued += await this.#emit(
          peerId,
          "receipt",
          MessageType.RECEIPT,
          content,
          slice.map((j) => j.id),
        );
      }
    }
    return queued;
  }

  async #emit(
    peerId: string,
    kind: ParcelKind,
    type: string,
    content: Uint8Array,
    jobIds: readonly number[],
  ): Promise<number> {
    const contact = this.ctx.db.get<{ state: string }>(
      "SELECT state FROM contacts WHERE id = ?",
      peerId,
    );
    if (!contact || contact.state === "blocked") {
      this.#delete(jobIds);
      return 0;
    }
    const channel = await this.identity.channel(peerId);
    if (!channel) return 0; // e.g. the contact's PDA for us expired: wait for a renewal
    const parcel = await makeParcel(this.ctx, channel, kind, type, content);
    // The jobs are claimed by deleting them in the transaction that queues their
    // parcel: if another process (the daemon, a CLI command) did them meanwhile,
    // nothing is queued twice.
    try {
      this.ctx.db.transaction(() => {
        if (this.#delete(jobIds) < jobIds.length) throw new JobTakenError();
        this.outbox.insert(parcel);
      });
    } catch (error) {
      if (error instanceof JobTakenError) return 0;
      throw error;
    }
    emit(this.ctx, "outbox-changed");
    return 1;
  }

  #delete(ids: readonly number[]): number {
    let deleted = 0;
    for (const id of ids) deleted += this.ctx.db.run("DELETE FROM jobs WHERE id = ?", id);
    return deleted;
  }
}
