import type { Pool } from '../db/pool.js'
import type { Logger } from '../log.js'
import type { Metrics } from '../metrics.js'
import { acceptBatch, type AcceptOutcome, type AcceptRequest } from '../store/accept.js'
import { isDatabaseUnavailable } from '../db/errors.js'

/** Most messages committed in one transaction (a larger request commits alone). */
export const MAX_BATCH = 500

interface Waiting {
  request: AcceptRequest
  resolve: (outcome: AcceptOutcome) => void
  reject: (err: Error) => void
}

export type AcceptedListener = (requests: AcceptRequest[], outcomes: AcceptOutcome[]) => void

/**
 * Group commit for accepted messages: while one transaction is in flight, new messages wait
 * and go together in the next one. Under light load a message commits alone at once; under
 * heavy load one commit carries hundreds. Only after the commit does anyone hear of them.
 */
export class Acceptor {
  private queue: Waiting[] = []
  private running: Promise<void> | undefined

  constructor (
    private readonly pool: Pool,
    /** this process: accepts signal the other nodes holding the target devices (store/accept.ts) */
    private readonly nodeId: string,
    private readonly log: Logger,
    private readonly onAccepted: AcceptedListener,
    private readonly metrics?: Metrics
  ) {}

  /** Resolves once the request's messages are committed, all together. */
  accept (request: AcceptRequest): Promise<AcceptOutcome> {
    return new Promise((resolve, reject) => {
      this.queue.push({ request, resolve, reject })
      if (this.running === undefined) this.running = this.drain()
    })
  }

  /** Resolves when everything handed in so far is committed or failed. */
  async idle (): Promise<void> {
    while (this.running !== undefined) await this.running
  }

  private async drain (): Promise<void> {
    try {
      while (this.queue.length > 0) await this.commit(this.nextBatch())
    } finally {
      this.running = undefined
    }
  }

  /**
   * Commits the batch in one transaction. When that fails for a reason tied to one request (a
   * value Postgres refuses that validation let through, not an unreachable database), the two
   * halves are committed apart, and so on down, so only the request at fault fails: a group
   * commit must never turn one client's mistake into another's error. The first half commits
   * before the second, so accept order stays seq order.
   */
  private async commit (batch: Waiting[]): Promise<void> {
    const requests = batch.map(w => w.request)
    const messages = requests.reduce((sum, r) => sum + r.messages.length, 0)
    let outcomes: AcceptOutcome[]
    try {
      const run = (): Promise<AcceptOutcome[]> => acceptBatch(this.pool, requests, this.nodeId)
      outcomes = await (this.metrics ? this.metrics.timeBatch('accept', messages, run) : run())
    } catch (err) {
      if (batch.length > 1 && !isDatabaseUnavailable(err)) {
        const failure = { err: (err as Error).message, requests: requests.length }
        this.log.warn(failure, 'accept transaction failed; committing its halves apart')
        const half = Math.ceil(batch.length / 2)
        await this.commit(batch.slice(0, half))
        await this.commit(batch.slice(half))
        return
      }
      this.log.error({ err, requests: requests.length, messages }, 'accept transaction failed')
      for (const w of batch) w.reject(err as Error)
      return
    }
    batch.forEach((w, i) => w.resolve(outcomes[i]))
    try {
      this.onAccepted(requests, outcomes)
    } catch (err) {
      // delivery to online devices failed to start: the rows are committed, reconnects replay them
      this.log.error({ err }, 'dispatch after accept failed')
    }
  }

  /** Whole requests from the front of the queue, up to MAX_BATCH messages, at least one request. */
  private nextBatch (): Waiting[] {
    let messages = 0
    let take = 0
    while (take < this.queue.length &&
      (take === 0 || messages + this.queue[take].request.messages.length <= MAX_BATCH)) {
      messages += this.queue[take].request.messages.length
      take++
    }
    return this.queue.splice(0, take)
  }
}
