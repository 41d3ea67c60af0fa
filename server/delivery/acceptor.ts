import type { Pool } from '../db/pool.js'
import type { Logger } from '../log.js'
import type { Metrics } from '../metrics.js'
import { acceptBatch, type AcceptOutcome, type NewMessage } from '../store/accept.js'

/** Most messages committed in one transaction. */
const MAX_BATCH = 500

interface Waiting {
  message: NewMessage
  resolve: (outcome: AcceptOutcome) => void
  reject: (err: Error) => void
}

export type AcceptedListener = (messages: NewMessage[], outcomes: AcceptOutcome[]) => void

/**
 * Group commit for accepted messages: while one transaction is in flight, new messages wait
 * and go together in the next one. Under light load a message commits alone at once; under
 * heavy load one commit carries hundreds. Only after the commit does anyone hear of them.
 */
export class Acceptor {
  private queue: Waiting[] = []
  private running: Promise<void> | undefined

  constructor (private readonly pool: Pool, private readonly log: Logger, private readonly onAccepted: AcceptedListener, private readonly metrics?: Metrics) {}

  accept (message: NewMessage): Promise<AcceptOutcome> {
    return new Promise((resolve, reject) => {
      this.queue.push({ message, resolve, reject })
      if (this.running === undefined) this.running = this.drain()
    })
  }

  /** Resolves when everything handed in so far is committed or failed. */
  async idle (): Promise<void> {
    while (this.running !== undefined) await this.running
  }

  private async drain (): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, MAX_BATCH)
        const messages = batch.map(w => w.message)
        let outcomes: AcceptOutcome[]
        try {
          outcomes = await (this.metrics ? this.metrics.timeBatch('accept', messages.length, () => acceptBatch(this.pool, messages)) : acceptBatch(this.pool, messages))
        } catch (err) {
          this.log.error({ err, messages: messages.length }, 'accept transaction failed')
          for (const w of batch) w.reject(err as Error)
          continue
        }
        batch.forEach((w, i) => w.resolve(outcomes[i]))
        try {
          this.onAccepted(messages, outcomes)
        } catch (err) {
          // delivery to online devices failed to start: the rows are committed, reconnects replay them
          this.log.error({ err }, 'dispatch after accept failed')
        }
      }
    } finally {
      this.running = undefined
    }
  }
}
