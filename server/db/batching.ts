// How Herald turns many small database requests into few statements, and keeps their order on a
// connection pool. Each class answers one question:
// - KeyedBatcher: reads and deletes by key (devices connecting together) share one statement;
// - OrderedBatcher: writes that must complete in call order go in batches, one batch at a time;
// - KeyedChain: writes to the same key run one after another, different keys concurrently;
// - FlushBatch: ids collected for a short while go to the database in one write.
import type { Logger } from '../log.js'

/**
 * Per-key reads and deletes that arrive while one statement is in flight go to the database
 * together in the next: when thousands of devices reconnect at once (a restarted server), one
 * statement serves many of them. Alone, a request goes at once.
 *
 * A key asked for again while it waits in a batch runs once, with the first argument; by
 * `repeat`, every caller gets its answer (`share`, for reads), or only the first does and the
 * others get `none` (`once`, for deletes: a deleted will is handed out once).
 */
export class KeyedBatcher<A, R> {
  readonly #run: (requests: Array<[key: string, arg: A]>) => Promise<Map<string, R>>
  readonly #none: R
  readonly #repeat: 'share' | 'once'
  #waiting = new Map<string, { arg: A, waiters: Waiter<R>[] }>()
  #running: Promise<void> | undefined

  constructor (run: (requests: Array<[key: string, arg: A]>) => Promise<Map<string, R>>, none: R,
    { repeat = 'share' }: { repeat?: 'share' | 'once' } = {}) {
    this.#run = run
    this.#none = none
    this.#repeat = repeat
  }

  get (key: string, arg: A): Promise<R> {
    return new Promise((resolve, reject) => {
      const entry = this.#waiting.get(key)
      if (entry === undefined) this.#waiting.set(key, { arg, waiters: [{ resolve, reject }] })
      else entry.waiters.push({ resolve, reject })
      this.#running ??= this.#drain()
    })
  }

  async #drain (): Promise<void> {
    while (this.#waiting.size > 0) {
      const batch = this.#waiting
      this.#waiting = new Map()
      try {
        const found = await this.#run([...batch].map(([key, { arg }]) => [key, arg]))
        for (const [key, { waiters }] of batch) {
          const answer = found.get(key) ?? this.#none
          waiters.forEach((waiter, n) => waiter.resolve(n === 0 || this.#repeat !== 'once' ? answer : this.#none))
        }
      } catch (err) {
        for (const { waiters } of batch.values()) for (const waiter of waiters) waiter.reject(err)
      }
    }
    this.#running = undefined
  }
}

interface Waiter<R> { resolve: (value: R) => void, reject: (err: unknown) => void }

interface Waiting<T> {
  item: T
  resolve: () => void
  reject: (err: unknown) => void
}

/**
 * Writes queued items in batches, one batch at a time, and settles every caller in push order.
 * Concurrent round trips on a pool finish in any order; aedes drops a packet whose brokerCounter
 * is below one the client already saw, so the outgoing queue must complete in call order
 * (aedes#955). Under load the batch grows while the previous one is in flight, so throughput
 * does not suffer from the serialisation.
 */
export class OrderedBatcher<T> {
  readonly #write: (items: T[]) => Promise<void>
  readonly #maxBatch: number
  #queue: Array<Waiting<T>> = []
  #draining: Promise<void> | undefined
  #closed = false

  constructor (write: (items: T[]) => Promise<void>, maxBatch = 256) {
    this.#write = write
    this.#maxBatch = maxBatch
  }

  push (item: T): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('persistence destroyed'))
    return new Promise((resolve, reject) => {
      this.#queue.push({ item, resolve, reject })
      this.#draining ??= this.#drain()
    })
  }

  async #drain (): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0, this.#maxBatch)
      try {
        await this.#write(batch.map(waiting => waiting.item))
        for (const waiting of batch) waiting.resolve()
      } catch (err) {
        for (const waiting of batch) waiting.reject(err)
      }
    }
    this.#draining = undefined
  }

  /** Refuses new items and waits for the queued ones to be written. */
  async close (): Promise<void> {
    this.#closed = true
    await this.#draining
  }
}

/**
 * Runs tasks that share a key one after another, in call order; different keys run concurrently.
 * A table write and the in-memory change that follows it must not interleave with another write
 * to the same row, or the index and the table disagree. (Not a batcher: each task is its own
 * statement. It lives here because it keeps order on a pool, as OrderedBatcher does.)
 */
export class KeyedChain {
  #tails = new Map<string, Promise<void>>()

  run<R> (key: string, task: () => Promise<R>): Promise<R> {
    const result = (this.#tails.get(key) ?? Promise.resolve()).then(task)
    const tail = result.then(noop, noop)
    this.#tails.set(key, tail)
    // tail never rejects: nothing to catch
    tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key)
    })
    return result
  }

  async idle (): Promise<void> {
    await Promise.all(this.#tails.values())
  }
}

function noop (): void {}

/**
 * Collects items (device ids going offline, say) for `delayMs` and writes them in one statement
 * per flush, one write at a time: a burst of disconnects costs one update, not one per device.
 * Nobody waits for these writes, so a failed one is logged and its items are dropped (for device
 * ids going offline: those devices read online until this node stops, when shutdown or the
 * dead-node sweep releases every device it held). `flush()` writes what is collected now, after
 * any write in progress; shutdown awaits it.
 */
export class FlushBatch<T> {
  readonly #write: (items: T[]) => Promise<void>
  readonly #log: Logger
  readonly #what: string
  readonly #delayMs: number
  #items: T[] = []
  #timer: NodeJS.Timeout | undefined
  #running: Promise<void> | undefined

  /** `what` names the write in the warning logged when it fails */
  constructor (write: (items: T[]) => Promise<void>, log: Logger, what: string, delayMs = 50) {
    this.#write = write
    this.#log = log
    this.#what = what
    this.#delayMs = delayMs
  }

  add (item: T): void {
    this.#items.push(item)
    // flush never rejects: a failed write is logged
    this.#timer ??= setTimeout(() => { this.#timer = undefined; this.flush().catch(noop) }, this.#delayMs)
  }

  async flush (): Promise<void> {
    while (this.#running) await this.#running
    clearTimeout(this.#timer)
    this.#timer = undefined
    if (this.#items.length === 0) return
    const items = this.#items
    this.#items = []
    this.#running = this.#write(items).catch(err =>
      this.#log.warn({ err: (err as Error).message, count: items.length }, `${this.#what} failed`))
    await this.#running
    this.#running = undefined
  }
}
