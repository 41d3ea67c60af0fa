/**
 * Where the client keeps its device id, the ids of messages already handed to the app, and
 * receipts not yet sent. Both `localStorage` and React Native's `AsyncStorage` fit as they are;
 * each method may answer directly or with a promise.
 */
export interface HeraldStorage {
  getItem: (key: string) => string | null | undefined | Promise<string | null | undefined>
  setItem: (key: string, value: string) => void | Promise<void>
  removeItem: (key: string) => void | Promise<void>
}

/** Kept in memory only: a restart forgets the device id, dedupe and unsent receipts. */
export function memoryStorage (): HeraldStorage {
  const items = new Map<string, string>()
  return {
    getItem: key => items.get(key) ?? null,
    setItem: (key, value) => { items.set(key, value) },
    removeItem: key => { items.delete(key) }
  }
}

/** `localStorage` when this runtime has one that works, memory otherwise (Node, React Native). */
export function defaultStorage (): HeraldStorage {
  try {
    const local = (globalThis as { localStorage?: HeraldStorage }).localStorage
    if (local) {
      // it throws in some private modes and sandboxed frames, and only when used
      const probe = 'herald:probe'
      local.setItem(probe, '1')
      local.removeItem(probe)
      return local
    }
  } catch {}
  return memoryStorage()
}

/**
 * One JSON value under one key, written whole. Writes of a key run one at a time, each writing
 * the value as it is when the write starts, so a later change is never overwritten by an earlier
 * one; saves made while a write waits share it.
 */
export class JsonSlot<T> {
  private written: Promise<void> = Promise.resolve()
  private queued: Promise<void> | undefined

  constructor (
    private readonly storage: HeraldStorage,
    readonly key: string,
    private readonly value: () => T,
    private readonly onError: (err: unknown) => void
  ) {}

  /** The stored value, or undefined when there is none or it is not JSON. */
  async load (): Promise<unknown> {
    try {
      const raw = await this.storage.getItem(this.key)
      return raw == null ? undefined : JSON.parse(raw)
    } catch (err) {
      if (!(err instanceof SyntaxError)) this.onError(err)
      return undefined
    }
  }

  /** Resolves once the value as it is now is stored (or the write failed and was reported). */
  save (): Promise<void> {
    this.queued ??= this.written.then(async () => {
      this.queued = undefined
      await this.storage.setItem(this.key, JSON.stringify(this.value()))
    }).catch(this.onError)
    this.written = this.queued
    return this.queued
  }

  /** Resolves once every save made so far has finished. */
  flushed (): Promise<void> {
    return this.written
  }
}
