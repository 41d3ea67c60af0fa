import type { Pool } from '../db/pool.js'
import type { Logger } from '../log.js'
import { deleteOldIdempotencyKeys, expireDue } from '../store/deliveries.js'
import { heartbeatNode, markGoneNodes, reclaimDevices, type DeviceConnection, type NodeInfo } from '../store/devices.js'
import { IDEMPOTENCY_WINDOW_HOURS } from '../store/accept.js'
import { LIVE_ONLY_GRACE_SECONDS } from '../store/deliveryStatus.js'
import { deleteStaleLoginAttempts } from '../store/loginAttempts.js'
import { deleteOrphanLiveSubscriptions } from '../store/topicSubscriptions.js'

const HEARTBEAT_MS = 5_000
/** A server silent for this long is taken for dead and its devices shown offline. */
export const NODE_STALE_SECONDS = 30
const GONE_NODES_MS = 5_000
const EXPIRY_SWEEP_MS = 5_000
const EXPIRY_BATCH = 10_000
const IDEMPOTENCY_SWEEP_MS = 10 * 60_000

export interface MaintenanceDeps {
  pool: Pool
  log: Logger
  nodeId: string
  /** what this node's heartbeat says of it (connections now) */
  info: () => NodeInfo
  /** the device connections this node holds now */
  connections: () => DeviceConnection[]
  /** whether this process holds the cluster's chores (services/cluster.ts) */
  isLeader: () => boolean
  onExpired?: (count: number) => void
}

/**
 * Periodic work. Every process beats its heartbeat. The cluster-wide chores run on one process
 * only, the leader (services/cluster.ts: whoever holds an advisory lock), and move when it dies:
 * marking dead nodes gone and their devices offline, recording expiries (sending never needs it:
 * expired rows are skipped on the way out), dropping idempotency keys past their window,
 * password-limiter rows of addresses long quiet and live subscriptions of gone nodes. Each job
 * runs alone; a failure is logged and retried next tick.
 */
export class Maintenance {
  private timers: NodeJS.Timeout[] = []
  private readonly running = new Set<string>()

  constructor (private readonly deps: MaintenanceDeps) {}

  start (): void {
    const { pool, log, nodeId } = this.deps
    this.every('heartbeat', HEARTBEAT_MS, false, async () => {
      const wasGone = await heartbeatNode(pool, nodeId, this.deps.info())
      if (wasGone) {
        // taken for dead (its listener connection was down a while): its devices were marked
        // offline, and they are still connected here
        const devices = await reclaimDevices(pool, nodeId, this.deps.connections())
        log.warn({ devices }, 'this node had been marked gone; its devices are marked connected again')
      }
    })
    this.every('gone-nodes', GONE_NODES_MS, true, async () => {
      const released = await markGoneNodes(pool, NODE_STALE_SECONDS)
      if (released > 0) log.info({ devices: released }, 'marked devices of a stopped server offline')
      await deleteOrphanLiveSubscriptions(pool)
    })
    this.every('expiry', EXPIRY_SWEEP_MS, true, async () => {
      let expired: number
      do {
        expired = await expireDue(pool, LIVE_ONLY_GRACE_SECONDS, EXPIRY_BATCH)
        if (expired > 0) {
          log.debug({ expired }, 'deliveries expired')
          this.deps.onExpired?.(expired)
        }
      } while (expired === EXPIRY_BATCH)
    })
    this.every('idempotency', IDEMPOTENCY_SWEEP_MS, true, async () => {
      await deleteOldIdempotencyKeys(pool, IDEMPOTENCY_WINDOW_HOURS)
    })
    // admin password limiter state of addresses not seen for a day
    this.every('login-attempts', IDEMPOTENCY_SWEEP_MS, true, async () => {
      await deleteStaleLoginAttempts(pool)
    })
  }

  stop (): void {
    for (const t of this.timers) clearInterval(t)
    this.timers = []
  }

  private every (name: string, ms: number, leaderOnly: boolean, job: () => Promise<void>): void {
    const timer = setInterval(() => {
      if (this.running.has(name) || (leaderOnly && !this.deps.isLeader())) return
      this.running.add(name)
      job().catch(err => this.deps.log.warn({ job: name, err: (err as Error).message }, 'maintenance job failed'))
        .finally(() => this.running.delete(name))
    }, ms)
    timer.unref()
    this.timers.push(timer)
  }
}
