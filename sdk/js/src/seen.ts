/** How many message ids are remembered for dedupe by default. */
export const DEFAULT_DEDUPE_LIMIT = 1_000
/**
 * An id is kept this long past its message's expiry: Herald sends nothing after `expiresAt`, but
 * by its own clock, which may be behind this device's.
 */
const KEPT_AFTER_EXPIRY_MS = 60 * 60_000

/**
 * The ids of messages already handed to the app, so that a message sent again (its PUBACK was
 * lost to a dropped connection or a server crash) is acknowledged without being shown twice.
 * Bounded twice over: an id is forgotten once its message can no longer come (an hour after it
 * expired), and beyond `limit` ids the oldest go first. Redeliveries are of the few messages that
 * were in flight, so a limit far above the server's in-flight window is plenty.
 */
export class SeenIds {
  /** id → expiresAt (ms); a Map keeps arrival order, oldest first */
  private readonly ids = new Map<string, number>()

  constructor (private readonly limit = DEFAULT_DEDUPE_LIMIT) {}

  has (id: string): boolean {
    return this.ids.has(id)
  }

  add (id: string, expiresAt: number, now: number): void {
    this.ids.delete(id)
    this.ids.set(id, Number.isFinite(expiresAt) ? expiresAt : now)
    this.prune(now)
  }

  private prune (now: number): void {
    for (const [id, expiresAt] of this.ids) {
      if (expiresAt + KEPT_AFTER_EXPIRY_MS < now) this.ids.delete(id)
    }
    for (const id of this.ids.keys()) {
      if (this.ids.size <= this.limit) break
      this.ids.delete(id)
    }
  }

  toJSON (): Array<[string, number]> {
    return [...this.ids]
  }

  /** What toJSON stored; anything else counts as nothing seen. */
  restore (stored: unknown, now: number): void {
    if (!Array.isArray(stored)) return
    for (const entry of stored) {
      if (Array.isArray(entry) && typeof entry[0] === 'string' && typeof entry[1] === 'number') {
        this.ids.set(entry[0], entry[1])
      }
    }
    this.prune(now)
  }
}
