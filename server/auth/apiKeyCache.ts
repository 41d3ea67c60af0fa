import type { Pool } from '../db/pool.js'
import { findActiveApiKeyByHash } from '../store/apiKeys.js'

export interface ApiKeyIdentity { id: string, name: string }

// How long a cached lookup is trusted: a key revoked on another server stops working within this.
const TRUST_MS = 5_000
// bounds each of the two maps (known keys, unknown keys): cleared when full
const MAX_ENTRIES = 10_000

/**
 * API keys by the sha256 of the key, looked up in Postgres at most once per key every few
 * seconds: a send would otherwise pay a query for its key. Unknown keys are remembered apart,
 * so a flood of wrong keys cannot push the real ones out.
 */
export class ApiKeyCache {
  readonly #known = new Map<string, { key: ApiKeyIdentity, at: number }>()
  readonly #unknown = new Map<string, number>()

  constructor (private readonly pool: Pool) {}

  async find (keyHash: string): Promise<ApiKeyIdentity | undefined> {
    const now = Date.now()
    const cached = this.#known.get(keyHash)
    if (cached && now - cached.at < TRUST_MS) return cached.key
    const missed = this.#unknown.get(keyHash)
    if (missed !== undefined && now - missed < TRUST_MS) return undefined
    const row = await findActiveApiKeyByHash(this.pool, keyHash)
    if (!row) {
      if (this.#unknown.size >= MAX_ENTRIES) this.#unknown.clear()
      this.#unknown.set(keyHash, now)
      return undefined
    }
    const key = { id: row.id, name: row.name }
    if (this.#known.size >= MAX_ENTRIES) this.#known.clear()
    this.#known.set(keyHash, { key, at: now })
    return key
  }

  /** After a revocation here: the revoked key must stop working at once, not in TRUST_MS. */
  clear (): void {
    this.#known.clear()
    this.#unknown.clear()
  }
}
