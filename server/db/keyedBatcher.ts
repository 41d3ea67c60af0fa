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
