import type { Pool } from '../db/pool.js'
import type { Logger } from '../log.js'
import type { Metrics } from '../metrics.js'
import {
  applyDeliveryUpdates, recordReceipts, type DeliveryUpdates, type ExpiredReason, type ReceiptEvent
} from '../store/deliveries.js'

/** Upper bound on how long a state change waits to be grouped with others. */
export const STATE_FLUSH_DELAY_MS = 20
const MAX_BATCH = 5_000
const RETRY_DELAY_MS = 1_000

interface Receipt { messageId: string, deviceId: string, event: ReceiptEvent, at: Date }

/**
 * Per-device delivery progress (delivered, expired) and receipts, grouped into one statement
 * per kind per batch instead of a round trip per PUBACK. One flush runs at a time; a failed
 * flush keeps its rows and retries, so a database outage delays records, never drops them.
 * (`sent` is not here: a row is recorded sent before it is written, by the channel's claim.)
 */
export class DeliveryStateWriter {
  private pending: DeliveryUpdates = { delivered: [], expired: [] }
  private receipts: Receipt[] = []
  private receiptWaiters: Array<{ resolve: () => void, reject: (err: Error) => void }> = []
  private timer: NodeJS.Timeout | undefined
  private flushing: Promise<void> | undefined
  private closed = false

  constructor (private readonly pool: Pool, private readonly log: Logger, private readonly metrics?: Metrics) {}

  delivered (seq: number): void {
    this.pending.delivered.push({ seq, at: Date.now() })
    this.schedule()
  }

  expired (seq: number, reason: ExpiredReason): void {
    this.pending.expired.push({ seq, reason })
    this.schedule()
  }

  /** Resolves once the receipt is committed, so the device's PUBACK means it was recorded. */
  receipt (receipt: Receipt): Promise<void> {
    this.receipts.push(receipt)
    const done = new Promise<void>((resolve, reject) => this.receiptWaiters.push({ resolve, reject }))
    this.schedule()
    return done
  }

  get backlog (): number {
    return this.pending.delivered.length + this.pending.expired.length + this.receipts.length
  }

  private schedule (): void {
    if (this.timer !== undefined || this.flushing !== undefined) return
    const delay = this.backlog >= MAX_BATCH ? 0 : STATE_FLUSH_DELAY_MS
    this.timer = setTimeout(() => { this.timer = undefined; void this.flush() }, delay)
  }

  /** Writes everything collected so far; resolves when it is committed (or the writer gave up on close). */
  async flush (): Promise<void> {
    while (this.flushing !== undefined) await this.flushing
    if (this.backlog === 0) return
    const batch = this.pending
    const receipts = this.receipts
    const waiters = this.receiptWaiters
    this.pending = { delivered: [], expired: [] }
    this.receipts = []
    this.receiptWaiters = []
    this.flushing = (async () => {
      try {
        const rows = batch.delivered.length + batch.expired.length
        const write = async (): Promise<void> => {
          await applyDeliveryUpdates(this.pool, batch)
          await recordReceipts(this.pool, receipts)
        }
        await (this.metrics ? this.metrics.timeBatch('delivery_state', rows + receipts.length, write) : write())
        this.metrics?.deliveries.inc({ status: 'expired' }, batch.expired.length)
        for (const w of waiters) w.resolve()
      } catch (err) {
        this.log.warn({ err, rows: batch.delivered.length + batch.expired.length, receipts: receipts.length },
          'delivery state write failed; keeping the rows and retrying')
        // put them back in front, in order, and try again later
        this.pending.delivered.unshift(...batch.delivered)
        this.pending.expired.unshift(...batch.expired)
        this.receipts.unshift(...receipts)
        this.receiptWaiters.unshift(...waiters)
        if (this.closed) throw err
        await new Promise(resolve => setTimeout(resolve, RETRY_DELAY_MS).unref())
      } finally {
        this.flushing = undefined
      }
    })()
    await this.flushing.catch(() => {})
    if (this.backlog > 0 && !this.closed) this.schedule()
  }

  /** Final flush on shutdown: one more attempt, then report what could not be written. */
  async close (): Promise<void> {
    clearTimeout(this.timer)
    this.timer = undefined
    this.closed = true
    await this.flush()
    if (this.backlog > 0) {
      const err = new Error('database unavailable at shutdown')
      for (const w of this.receiptWaiters) w.reject(err)
      this.log.error({ rows: this.backlog },
        'delivery states not written at shutdown; they are replayed as sent/queued on reconnect')
    }
  }
}
