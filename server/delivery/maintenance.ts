import type { Pool } from '../db/pool.js'
import type { Logger } from '../log.js'
import { deleteOldIdempotencyKeys, expireDue } from '../store/deliveries.js'
import { heartbeatNode, releaseDeadNodes } from '../store/devices.js'
import { IDEMPOTENCY_WINDOW_HOURS } from '../store/accept.js'
import { LIVE_ONLY_GRACE_SECONDS } from '../store/deliveryStatus.js'
import { deleteStaleLoginAttempts } from '../store/loginAttempts.js'

const HEARTBEAT_MS = 10_000
/** A server silent for this long is taken for dead and its devices shown offline. */
export const NODE_STALE_SECONDS = 60
const EXPIRY_SWEEP_MS = 5_000
const EXPIRY_BATCH = 10_000
const IDEMPOTENCY_SWEEP_MS = 10 * 60_000

/**
 * Periodic work: this node's heartbeat, marking devices of dead nodes offline, recording
 * expiries (sending never needs it: expired rows are skipped on the way out), and dropping
 * idempotency keys past their window and password-limiter rows of addresses long quiet. Each
 * job runs alone; a failure is logged and retried next tick.
 */
export class Maintenance {
  private timers: NodeJS.Timeout[] = []
  private readonly running = new Set<string>()

  constructor (private readonly pool: Pool, private readonly log: Logger, private readonly nodeId: string, private readonly onExpired: (count: number) => void = () => {}) {}

  start (): void {
    this.every('heartbeat', HEARTBEAT_MS, async () => {
      await heartbeatNode(this.pool, this.nodeId)
      const released = await releaseDeadNodes(this.pool, NODE_STALE_SECONDS)
      if (released > 0) this.log.info({ devices: released }, 'marked devices of a stopped server offline')
    })
    this.every('expiry', EXPIRY_SWEEP_MS, async () => {
      let expired: number
      do {
        expired = await expireDue(this.pool, LIVE_ONLY_GRACE_SECONDS, EXPIRY_BATCH)
        if (expired > 0) {
          this.log.debug({ expired }, 'deliveries expired')
          this.onExpired(expired)
        }
      } while (expired === EXPIRY_BATCH)
    })
    this.every('idempotency', IDEMPOTENCY_SWEEP_MS, async () => {
      await deleteOldIdempotencyKeys(this.pool, IDEMPOTENCY_WINDOW_HOURS)
    })
    // admin password limiter state of addresses not seen for a day
    this.every('login-attempts', IDEMPOTENCY_SWEEP_MS, async () => {
      await deleteStaleLoginAttempts(this.pool)
    })
  }

  stop (): void {
    for (const t of this.timers) clearInterval(t)
    this.timers = []
  }

  private every (name: string, ms: number, job: () => Promise<void>): void {
    const timer = setInterval(() => {
      if (this.running.has(name)) return
      this.running.add(name)
      job().catch(err => this.log.warn({ job: name, err: (err as Error).message }, 'maintenance job failed'))
        .finally(() => this.running.delete(name))
    }, ms)
    timer.unref()
    this.timers.push(timer)
  }
}
