/**
 * Per-key reads (or deletes) that arrive while one is in flight go to the database together in
 * the next: when thousands of devices reconnect at once (a restarted server), one statement
 * serves many of them. Alone, a request goes at once. A key asked for twice in one batch is run
 * once, with the first argument given, and both callers get its answer; with `once` (a delete:
 * a will is handed out once) the second gets `none`.
 */
export class KeyedBatcher<A, R> {
  readonly #run: (requests: Array<[key: string, arg: A]>) => Promise<Map<string, R>>
  readonly #none: R
  readonly #once: boolean
  #waiting = new Map<string, { arg: A, waiters: Array<{ resolve: (value: R) => void, reject: (err: unknown) => void }> }>()
  #running: Promise<void> | undefined

  constructor (run: (requests: Array<[key: string, arg: A]>) => Promise<Map<string, R>>, none: R, { once = false } = {}) {
    this.#run = run
    this.#none = none
    this.#once = once
  }

  get (key: string, arg: A): Promise<R> {
    return new Promise((resolve, reject) => {
      const entry = this.#waiting.get(key)
      if (entry) entry.waiters.push({ resolve, reject })
      else this.#waiting.set(key, { arg, waiters: [{ resolve, reject }] })
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
          waiters.forEach((waiter, n) => waiter.resolve(n === 0 || !this.#once ? answer : this.#none))
        }
      } catch (err) {
        for (const { waiters } of batch.values()) for (const waiter of waiters) waiter.reject(err)
      }
    }
    this.#running = undefined
  }
}
