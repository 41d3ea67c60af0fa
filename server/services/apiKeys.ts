import type { Pool } from '../db/pool.js'
import type { Logger } from '../log.js'
import type { NewApiKey } from '../wire.js'
import { ApiKeyCache, type ApiKeyIdentity } from '../auth/apiKeyCache.js'
import { generateApiKey, hashApiKey } from '../auth/secrets.js'
import {
  countApiKeys, ensureApiKey, insertApiKey, listApiKeys, revokeApiKey, touchApiKeys, type ApiKeyRow
} from '../store/apiKeys.js'

/** Characters of a key shown in listings: enough to tell keys apart, useless to an attacker. */
const KEY_PREFIX_LENGTH = 10
// last-used times are written at most this often, for all keys used meanwhile in one statement
const LAST_USED_FLUSH_MS = 30_000

/**
 * API keys: creating, listing and revoking them (the REST API and the admin UI call the same
 * functions), and recognising one on a request.
 */
export class ApiKeyService {
  readonly #cache: ApiKeyCache
  readonly #used = new Set<string>()
  readonly #flushTimer: NodeJS.Timeout

  constructor (
    private readonly pool: Pool,
    private readonly log: Logger,
    /** tells the other processes that a key was revoked, so that their caches forget it too */
    private readonly announceRevoked: () => Promise<void> = async () => {}
  ) {
    this.#cache = new ApiKeyCache(pool)
    this.#flushTimer = setInterval(() => { this.#flushLastUsed().catch(() => {}) }, LAST_USED_FLUSH_MS)
    this.#flushTimer.unref()
  }

  /** The key's secret is in the result and nowhere else: it is shown once. */
  async create (name: string): Promise<NewApiKey> {
    const key = generateApiKey()
    const row = await insertApiKey(this.pool, name, key.slice(0, KEY_PREFIX_LENGTH), hashApiKey(key))
    return { ...row, key }
  }

  list (): Promise<ApiKeyRow[]> {
    return listApiKeys(this.pool)
  }

  /** The revoked key, or undefined when there is no such key. */
  async revoke (id: string): Promise<ApiKeyRow | undefined> {
    const row = await revokeApiKey(this.pool, id)
    if (row) {
      this.#cache.clear()
      // the revocation is committed; if the signal is lost, other processes trust their cache
      // entry for at most a few seconds more (auth/apiKeyCache.ts)
      await this.announceRevoked().catch(err =>
        this.log.warn({ err: (err as Error).message }, 'telling other processes of a revoked API key failed'))
    }
    return row
  }

  /** The active key whose secret hashes to `keyHash`; its use is recorded (last used). */
  async identify (keyHash: string): Promise<ApiKeyIdentity | undefined> {
    const key = await this.#cache.find(keyHash)
    if (key) this.#used.add(key.id)
    return key
  }

  /**
   * On start: API_KEY from the config is made to exist; a first start with no key at all gets
   * one, returned to be shown once, so the printed curl works.
   */
  async seed (configured: string | undefined): Promise<string | undefined> {
    if (configured) {
      await ensureApiKey(this.pool, 'API_KEY', configured.slice(0, KEY_PREFIX_LENGTH), hashApiKey(configured))
      return undefined
    }
    if (await countApiKeys(this.pool) > 0) return undefined
    const key = generateApiKey()
    await insertApiKey(this.pool, 'bootstrap', key.slice(0, KEY_PREFIX_LENGTH), hashApiKey(key))
    return key
  }

  /** Forgets cached keys: another process revoked one. */
  forgetCached (): void {
    this.#cache.clear()
  }

  /** Writes the last-used times still pending. */
  async close (): Promise<void> {
    clearInterval(this.#flushTimer)
    await this.#flushLastUsed().catch(() => {})
  }

  async #flushLastUsed (): Promise<void> {
    const ids = [...this.#used]
    this.#used.clear()
    if (ids.length === 0) return
    await touchApiKeys(this.pool, ids).catch(err => {
      this.log.warn({ err: (err as Error).message }, 'recording API key use failed')
      throw err
    })
  }
}
