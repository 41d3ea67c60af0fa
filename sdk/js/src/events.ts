// A typed event emitter that runs anywhere (Node's `events` is not on the browser path).

type Listener = (...args: any[]) => void
export type EventMap<E> = { [K in keyof E]: Listener }

export class Emitter<E extends EventMap<E>> {
  private readonly listeners = new Map<keyof E, Set<Listener>>()

  /** Calls `listener` on every `event`; returns a function that removes it. */
  on<K extends keyof E> (event: K, listener: E[K]): () => void {
    let set = this.listeners.get(event)
    if (!set) this.listeners.set(event, set = new Set())
    set.add(listener)
    this.added(event)
    return () => this.off(event, listener)
  }

  off<K extends keyof E> (event: K, listener: E[K]): void {
    this.listeners.get(event)?.delete(listener)
  }

  protected listenerCount (event: keyof E): number {
    return this.listeners.get(event)?.size ?? 0
  }

  /** a listener was added; subclasses wait on it */
  protected added (_event: keyof E): void {}

  protected emit<K extends keyof E> (event: K, ...args: Parameters<E[K]>): void {
    for (const listener of [...this.listeners.get(event) ?? []]) {
      // as the DOM does for event listeners: one that throws neither stops the others nor the
      // client (a message would otherwise never be acknowledged and come back for ever), and the
      // error is still reported where uncaught errors go
      try { listener(...args) } catch (err) { reportUncaught(err) }
    }
  }
}

function reportUncaught (err: unknown): void {
  const report = (globalThis as { reportError?: (err: unknown) => void }).reportError
  if (typeof report === 'function') report(err)
  else setTimeout(() => { throw err })
}
