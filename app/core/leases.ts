/**
 * Leases: which process does a piece of shared work (maintenance) for a while.
 * A lease is taken in one statement, so two processes never both hold it; one
 * not given back (its holder died) lapses at its end.
 *
 * @module
 */
import type { SqliteDatabase } from "../../bindings/durable.ts";

/** The leases of one data directory (table `leases`). */
export class Leases {
  constructor(private readonly db: SqliteDatabase, private readonly now: () => number = Date.now) {}

  /** Takes the lease `name` for `holder` for `ms`, unless another holder's has not lapsed. */
  take(name: string, holder: string, ms: number): boolean {
    const now = this.now();
    return this.db.run(
      `INSERT INTO leases (name, holder, until) VALUES (?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until
       WHERE leases.until < ?`,
      name,
      holder,
      now + ms,
      now,
    ) === 1;
  }

  /** Gives the lease `name` back, if `holder` still holds it. */
  release(name: string, holder: string): void {
    this.db.run("DELETE FROM leases WHERE name = ? AND holder = ?", name, holder);
  }
}
