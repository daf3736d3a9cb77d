/**
 * A large mailbox, built fast through the store's own write path: `insertMessage`,
 * which taking in mail uses, so that the rows, the list keys, the full-text
 * index and the counters are written by the same code (and triggers) as in use.
 * Only the parcels' cryptography is skipped. Messages are text drawn from a
 * Zipf-distributed vocabulary (about 2 KB by default), from the node's contacts
 * in turn; one in ten is sent mail, one in twenty has an attachment, one in three
 * of the received ones is unread, and ten hold {@linkcode RARE}. The same size
 * always gives the same text.
 *
 * Used by tests/bench/mailbox_bench.ts, tests/bench/first_paint_bench.ts and the
 * paging tests of the CLI and the web app.
 *
 * @module
 */
import { join } from "node:path";
import { insertMessage } from "../app/core/message_rows.ts";
import type { MailContent } from "../app/core/protocol/messages.ts";
import type { Relaymail } from "../app/services/relaymail.ts";
import { makeNode, pair, type TestNode } from "./helpers.ts";

/** The word in nearly every message. */
export const COMMON = "the";
/** The word in ten messages of any mailbox of at least ten. */
export const RARE = "zanzibar";
/** Words in a body by default: about 2 KB. */
export const BODY_WORDS = 330;

/** A small deterministic random source (mulberry32). */
export function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A vocabulary of made-up words, most common first, and a Zipf sampler over it. */
export function vocabulary(next: () => number): () => string {
  const syllables = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "zu", "pe", "da", "gi"];
  const words = [COMMON, "and", "of", "to", "a", "in", "meeting", "mail", "stick", "mesh"];
  while (words.length < 20_000) {
    const n = 2 + Math.floor(next() * 3);
    let word = "";
    for (let i = 0; i < n; i++) word += syllables[Math.floor(next() * syllables.length)];
    words.push(word + words.length.toString(36));
  }
  const cumulative: number[] = [];
  let total = 0;
  for (let rank = 1; rank <= words.length; rank++) cumulative.push(total += 1 / rank);
  return () => {
    const target = next() * total;
    let low = 0;
    let high = cumulative.length - 1;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (cumulative[middle] < target) low = middle + 1;
      else high = middle;
    }
    return words[low];
  };
}

/** Options of {@linkcode fillMailbox}. */
export interface FillOptions {
  /** Words in each body (default {@linkcode BODY_WORDS}). */
  readonly bodyWords?: number;
  /** When the oldest message was sent (default 2020-01-01); the mail spans five years. */
  readonly start?: number;
}

/**
 * Stores `size` messages in `node`'s mailbox, from (and to) its contacts in
 * turn, oldest first, a thousand to a transaction. The node needs a contact.
 */
export function fillMailbox(node: Relaymail, size: number, options: FillOptions = {}): void {
  const db = node.ctx.db;
  const next = random(size);
  const word = vocabulary(next);
  const me = node.identity.id;
  const contacts = node.contacts.list().map((c) => c.id);
  if (contacts.length === 0) throw new Error("fillMailbox() needs a node with contacts");
  const bodyWords = options.bodyWords ?? BODY_WORDS;
  const start = options.start ?? Date.UTC(2020, 0, 1);
  const step = (5 * 365 * 86_400_000) / size; // five years of mail
  const rareEvery = Math.max(1, Math.floor(size / 10));
  const BATCH = 1000;
  for (let first = 0; first < size; first += BATCH) {
    db.transaction(() => {
      for (let i = first; i < Math.min(size, first + BATCH); i++) {
        const words = Array.from({ length: bodyWords }, word);
        if (i % rareEvery === 7 % rareEvery) words[Math.floor(next() * bodyWords)] = RARE;
        const sent = i % 10 === 3;
        const sentAt = Math.round(start + i * step + next() * step);
        const from = contacts[i % contacts.length];
        const mail: MailContent = {
          messageId: crypto.randomUUID(),
          threadId: crypto.randomUUID(),
          inReplyTo: "",
          sentAt: new Date(sentAt),
          subject: Array.from({ length: 6 }, word).join(" "),
          body: words.join(" "),
          recipients: sent ? [from] : [me],
          attachments: i % 20 === 5
            ? [{
              fileName: `${word()}-${i}.pdf`,
              mediaType: "application/pdf",
              content: new Uint8Array(64),
            }]
            : [],
        };
        const rowId = insertMessage(
          db,
          sent ? me : from,
          sent ? "sent" : "inbox",
          mail,
          sentAt,
          sentAt + 60_000,
        );
        if (!sent && i % 3 !== 0) {
          db.run("UPDATE messages SET read_at = ? WHERE id = ?", 1, rowId);
        }
      }
    });
  }
  db.exec("PRAGMA optimize");
}

/**
 * Alice's node in `dir` (made there, with her contacts Bob and Carol, the first
 * time; opened again after), and whether it was made now.
 */
export async function aliceIn(dir: string): Promise<{ alice: TestNode; fresh: boolean }> {
  const fresh = !await Deno.stat(dir).then(() => true, () => false);
  await Deno.mkdir(dir, { recursive: true });
  const alice = await makeNode("Alice", { dir });
  if (fresh) {
    for (const name of ["Bob", "Carol"]) {
      const other = await makeNode(name);
      await pair(alice, other);
      await other.close();
    }
  }
  return { alice, fresh };
}

/**
 * Alice's node with a mailbox of `size` messages, kept in `fixtures/<size>/alice`
 * (the data directory): built the first time, reused after.
 */
export async function mailboxOf(size: number, fixtures: string): Promise<TestNode> {
  const dir = join(fixtures, String(size));
  const done = join(dir, "built");
  const reuse = await Deno.stat(done).then(() => true, () => false);
  const { alice } = await aliceIn(join(dir, "alice"));
  if (!reuse) {
    const started = performance.now();
    fillMailbox(alice.node, size);
    await Deno.writeTextFile(done, String(size));
    console.error(
      `built ${size} messages in ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
  }
  return alice;
}

/** The message {@linkcode addNeedle} adds, and the words that each find it by one field only. */
export interface Needle {
  /** Its message id. */
  readonly id: string;
  /** A word of its subject only. */
  readonly subjectWord: string;
  /** A word of its body only. */
  readonly bodyWord: string;
  /** A word of its attachment's name only. */
  readonly attachmentWord: string;
  /** Its attachment's name. */
  readonly attachmentName: string;
  /** Its sender's name: a contact who sent nothing else. */
  readonly sender: string;
  /** Its sender's id. */
  readonly senderId: string;
}

/**
 * Adds to `alice`'s inbox one unread message, older than any the fixture made,
 * from a new contact (Dmitri, paired now) who sent nothing else, with words
 * found nowhere else: one in its subject, one in its body, one in its
 * attachment's name.
 */
export async function addNeedle(alice: TestNode): Promise<Needle> {
  const dmitri = await makeNode("Dmitri");
  try {
    await pair(alice, dmitri);
  } finally {
    await dmitri.close();
  }
  const senderId = alice.node.contacts.list().find((c) => c.name === "Dmitri")!.id;
  const sentAt = Date.UTC(2019, 5, 1, 9, 30);
  const needle = {
    id: crypto.randomUUID(),
    subjectWord: "quokka",
    bodyWord: "wombat",
    attachmentWord: "platypus",
    attachmentName: "platypus-plan.pdf",
    sender: "Dmitri",
    senderId,
  };
  insertMessage(
    alice.node.ctx.db,
    senderId,
    "inbox",
    {
      messageId: needle.id,
      threadId: crypto.randomUUID(),
      inReplyTo: "",
      sentAt: new Date(sentAt),
      subject: `Harbour ${needle.subjectWord}`,
      body: `Notes about the ${needle.bodyWord} crossing, at last.`,
      recipients: [alice.node.identity.id],
      attachments: [{
        fileName: needle.attachmentName,
        mediaType: "application/pdf",
        content: new TextEncoder().encode("%PDF-1.4 plan"),
      }],
    },
    sentAt,
    sentAt + 60_000,
  );
  return needle;
}

/**
 * The ids of a folder's messages as the database holds them, newest first by
 * the time they were sent (the order listings had before they were paged).
 */
export function folderOrder(node: Relaymail, folder: "inbox" | "sent"): string[] {
  return node.ctx.db.all<{ message_id: string }>(
    "SELECT message_id FROM messages WHERE folder = ? ORDER BY sent_at DESC, id DESC",
    folder,
  ).map((row) => row.message_id);
}

/** Unread messages in the inbox, counted row by row (not from the counters). */
export function unreadInInbox(node: Relaymail): number {
  return node.ctx.db.get<{ n: number }>(
    "SELECT count(*) AS n FROM messages WHERE folder = 'inbox' AND read_at IS NULL",
  )!.n;
}

/** The words of `text` as a search takes them: lower case, split at what is not a letter or digit. */
function words(text: string): string[] {
  return text.toLowerCase().split(/[^\p{L}\p{N}]+/u).filter(Boolean);
}

/**
 * The ids of the messages (of every folder) that hold `word` as a whole word in
 * their subject, body or an attachment's name, or whose sender's name is
 * `word`, newest first: read from the rows, without the full-text index.
 */
export function messagesWithWord(node: Relaymail, word: string): string[] {
  const names = new Map(
    [...node.contacts.list(), { id: node.identity.id, name: node.identity.name }]
      .map((p) => [p.id, words(p.name)]),
  );
  const wanted = word.toLowerCase();
  return node.ctx.db.all<
    { message_id: string; sender_id: string; subject: string; body: string; names: string | null }
  >(
    `SELECT m.message_id, m.sender_id, m.subject, m.body,
       (SELECT group_concat(file_name, ' ') FROM attachments a WHERE a.message = m.id) AS names
     FROM messages m ORDER BY m.sent_at DESC, m.id DESC`,
  ).filter((m) =>
    [m.subject, m.body, m.names ?? ""].some((text) => words(text).includes(wanted)) ||
    (names.get(m.sender_id) ?? []).includes(wanted)
  ).map((m) => m.message_id);
}
