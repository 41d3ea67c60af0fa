import { randomUUID } from 'node:crypto'
import type { Pool } from '../db/pool.js'
import type { Logger } from '../log.js'
import type { Metrics } from '../metrics.js'
import { HERALD_VERSION } from '../version.js'
import {
  dueWebhookDelivery, endpointsWithWork, formWebhookDelivery, pruneWebhooks, recordWebhookAttempt,
  type AttemptOutcome, type DueBatch, type EndpointTarget
} from '../store/webhooks.js'
import { writePayload } from './payload.js'
import { signWebhook } from './signature.js'

/** Events are kept this long for an endpoint that does not read them (disabled, or failing). */
export const EVENT_RETENTION_DAYS = 3

export interface WebhookSenderOptions {
  /** how often the outbox is looked at while there is nothing to send */
  pollMs: number
  /** events in one POST */
  maxEventsPerPost: number
  /** one attempt, from connecting to the end of the answer */
  timeoutMs: number
  /** of an answer's body, this much is read (a start of it is kept to show), the rest is not */
  maxResponseBytes: number
  /** an endpoint failing for this long is disabled */
  retryWindowMs: number
  /** the wait after the first failure, doubled after each next one up to maxRetryDelayMs (±50% jitter) */
  firstRetryDelayMs: number
  maxRetryDelayMs: number
  /** endpoints served at once */
  concurrency: number
}

export const WEBHOOK_DEFAULTS: WebhookSenderOptions = {
  // sends are grouped by this wait too: at 5,000 deliveries/s a poll finds ~1,000 events
  pollMs: 200,
  maxEventsPerPost: 1_000,
  timeoutMs: 10_000,
  maxResponseBytes: 64 * 1024,
  retryWindowMs: 24 * 3600_000,
  firstRetryDelayMs: 5_000,
  maxRetryDelayMs: 3600_000,
  concurrency: 8
}

/** What is kept of an answer's body for the admin's list of failed deliveries. */
const RESPONSE_EXCERPT_CHARS = 1_000
const PRUNE_MS = 60_000
/** outbox rows deleted by one statement (each holds up to 500 events) */
const PRUNE_BATCH = 5_000

export interface WebhookSenderDeps {
  pool: Pool
  log: Logger
  metrics?: Metrics
  /** only the leader sends (services/cluster.ts), so that each event is sent by one process */
  isLeader: () => boolean
  options?: Partial<WebhookSenderOptions>
}

/**
 * Sends the outbox (migrations/0008_webhooks.sql) to the endpoints, on the cluster's leader only.
 * Per endpoint, one batch at a time: the pending one if it is due, else a new one formed from
 * the events past its cursor; a success goes straight on to the next, a failure waits for its
 * retry. Each batch keeps its id (the webhook-id) and body across retries, and is signed anew
 * with each attempt's time. A leader that loses its lock mid-POST may send one batch twice,
 * with the same webhook-id, which at-least-once allows.
 *
 * A slow or hostile receiver costs this loop a connection for at most `timeoutMs` and reads at
 * most `maxResponseBytes` of its answer; sends, the engine and other endpoints never wait on it.
 */
export class WebhookSender {
  readonly #options: WebhookSenderOptions
  readonly #busy = new Map<string, Promise<void>>()
  readonly #stop = new AbortController()
  #timer: NodeJS.Timeout | undefined
  #pruneTimer: NodeJS.Timeout | undefined
  #polling = false

  constructor (private readonly deps: WebhookSenderDeps) {
    this.#options = { ...WEBHOOK_DEFAULTS, ...deps.options }
  }

  start (): void {
    this.#timer = setInterval(() => { void this.poll() }, this.#options.pollMs)
    this.#timer.unref()
    this.#pruneTimer = setInterval(() => { void this.#prune() }, PRUNE_MS)
    this.#pruneTimer.unref()
  }

  /** Aborts the POSTs in flight (they are retried by whichever process leads next) and waits for them. */
  async stop (): Promise<void> {
    clearInterval(this.#timer)
    clearInterval(this.#pruneTimer)
    this.#stop.abort()
    await Promise.allSettled(this.#busy.values())
  }

  /** One look at the outbox: every endpoint with work and a free slot gets a runner. */
  async poll (): Promise<void> {
    if (this.#polling || this.#stop.signal.aborted || !this.deps.isLeader()) return
    this.#polling = true
    try {
      const endpoints = await endpointsWithWork(this.deps.pool)
      for (const endpoint of endpoints) {
        if (this.#busy.has(endpoint.id) || this.#busy.size >= this.#options.concurrency) continue
        const run = this.#serve(endpoint)
          .catch(err => this.deps.log.warn({ err: (err as Error).message, endpoint: endpoint.id },
            'webhook sending failed; retrying on the next poll'))
          .finally(() => this.#busy.delete(endpoint.id))
        this.#busy.set(endpoint.id, run)
      }
    } catch (err) {
      this.deps.log.warn({ err: (err as Error).message }, 'reading the webhook outbox failed')
    } finally {
      this.#polling = false
    }
  }

  /** Sends the endpoint's batches one after another until none is due or one fails. */
  async #serve (endpoint: EndpointTarget): Promise<void> {
    const { pool } = this.deps
    while (!this.#stop.signal.aborted && this.deps.isLeader()) {
      const batch = await dueWebhookDelivery(pool, endpoint.id) ??
        await formWebhookDelivery(pool, endpoint.id, `whd_${randomUUID().replaceAll('-', '')}`,
          this.#options.maxEventsPerPost)
      if (batch === undefined) return
      const body = batch.body ?? writePayload(batch.formedAtMs, batch.rows ?? [])
      const outcome = await this.#post(endpoint, batch.id, body)
      if (this.#stop.signal.aborted) return
      const retryAt = outcome.ok ? undefined : this.#retryAt(batch)
      // the body goes back to Postgres only when it must be kept for a retry: a delivered batch
      // (nearly all of them) never stores its few hundred KB
      await recordWebhookAttempt(pool, endpoint.id, batch.id, outcome, retryAt, disableReason(outcome, this.#options),
        outcome.ok ? undefined : body)
      this.deps.metrics?.webhookPosts.inc({ result: outcome.ok ? 'delivered' : retryAt ? 'retry' : 'failed' })
      if (!outcome.ok) {
        this.deps.log.info({ endpoint: endpoint.id, delivery: batch.id, status: outcome.status, error: outcome.error },
          retryAt
            ? 'webhook POST failed; retrying later'
            : 'webhook endpoint failing for the whole retry window: disabled')
        return
      }
      this.deps.metrics?.webhookEvents.inc(batch.events)
    }
  }

  /** When to try again, or undefined once the endpoint has been failing for the whole window. */
  #retryAt (batch: DueBatch): Date | undefined {
    const now = Date.now()
    const since = batch.failingSince?.getTime() ?? now
    if (now - since >= this.#options.retryWindowMs) return undefined
    const doubled = this.#options.firstRetryDelayMs * 2 ** Math.min(batch.attempts, 30)
    const delay = Math.min(doubled, this.#options.maxRetryDelayMs) * (0.5 + Math.random())
    return new Date(Math.min(now + delay, since + this.#options.retryWindowMs))
  }

  async #post (endpoint: EndpointTarget, id: string, body: string): Promise<AttemptOutcome> {
    const { timeoutMs, maxResponseBytes } = this.#options
    const signal = AbortSignal.any([this.#stop.signal, AbortSignal.timeout(timeoutMs)])
    try {
      const res = await fetch(endpoint.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': `Herald/${HERALD_VERSION}`,
          ...signWebhook(endpoint.secret, id, body)
        },
        body,
        // a redirect is an answer, not a new place to send signed events to
        redirect: 'manual',
        signal
      })
      const response = await readCapped(res, maxResponseBytes)
      const ok = res.status >= 200 && res.status < 300
      return { ok, status: res.status, response, error: ok ? undefined : `HTTP ${res.status}` }
    } catch (err) {
      const e = err as Error & { cause?: { code?: string, message?: string } }
      const error = e.name === 'TimeoutError'
        ? `no answer within ${timeoutMs} ms`
        : e.cause?.code ?? e.cause?.message ?? e.message
      return { ok: false, error }
    }
  }

  async #prune (): Promise<void> {
    if (!this.deps.isLeader()) return
    try {
      while (await pruneWebhooks(this.deps.pool, EVENT_RETENTION_DAYS, PRUNE_BATCH) === PRUNE_BATCH) { /* more */ }
    } catch (err) {
      this.deps.log.warn({ err: (err as Error).message }, 'pruning webhook events failed')
    }
  }
}

/** Reads up to `max` bytes of an answer's body and drops the rest; the start is kept as text to show. */
async function readCapped (res: Response, max: number): Promise<string> {
  if (res.body === null) return ''
  const reader = res.body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  try {
    while (size < max) {
      const { done, value } = await reader.read()
      if (done) break
      chunks.push(value)
      size += value.byteLength
    }
  } finally {
    // an endless or huge answer is cut here; its connection is not reused
    await reader.cancel().catch(() => {})
  }
  return Buffer.concat(chunks).subarray(0, max).toString('utf8').slice(0, RESPONSE_EXCERPT_CHARS)
}

function disableReason (outcome: AttemptOutcome, options: WebhookSenderOptions): string {
  const hours = options.retryWindowMs / 3600_000
  const window = hours >= 1 ? `${Math.round(hours * 10) / 10} h` : `${Math.round(options.retryWindowMs / 1000)} s`
  return `failing for ${window}; last attempt: ${outcome.error ?? 'failed'}`
}
