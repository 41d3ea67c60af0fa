export interface BackoffOptions {
  /** the first retry waits between half of this and this, in ms (default 1 000) */
  initialDelayMs?: number
  /** no retry waits longer than this, in ms (default 60 000) */
  maxDelayMs?: number
}

export const DEFAULT_INITIAL_DELAY_MS = 1_000
export const DEFAULT_MAX_DELAY_MS = 60_000

/**
 * The wait before retry number `attempt` (0 for the first): doubling from `initialDelayMs` up to
 * `maxDelayMs`, of which a random half is dropped ("equal jitter"). The jitter spreads the devices
 * a server restart disconnected all at once; the half kept means no device retries in a tight loop.
 */
export function backoffDelay (attempt: number, options: BackoffOptions = {}, random = Math.random): number {
  const initial = options.initialDelayMs ?? DEFAULT_INITIAL_DELAY_MS
  const max = options.maxDelayMs ?? DEFAULT_MAX_DELAY_MS
  const ceiling = Math.min(max, initial * 2 ** Math.min(attempt, 30))
  return ceiling / 2 + random() * ceiling / 2
}
