import type { Notification } from 'pg'
import type { Pool, PoolClient } from '../db/pool.js'
import type { Logger } from '../log.js'
import type { DeliveryEngine } from '../delivery/engine.js'
import { CHORES_LOCK, devicesConnectedElsewhere } from '../store/devices.js'
import { CLUSTER_CHANNEL, decodeSignal, nodeChannel, sendSignals, type Signal } from '../store/signals.js'

// How often a process that does not hold the chores tries to take them: how long they wait when
// their process dies.
const LEADER_TRY_MS = 2_000
// Reconnecting the listener after its connection broke: first wait, doubled up to the last.
const RECONNECT_FIRST_MS = 100
const RECONNECT_MAX_MS = 5_000

export interface ClusterDeps {
  pool: Pool
  nodeId: string
  log: Logger
  engine: DeliveryEngine
  /** an API key was revoked somewhere: forget cached keys */
  forgetApiKeys: () => void
}

/**
 * This process as one of several on one database. It listens (LISTEN, on a connection of its
 * own) on its node channel and the cluster channel for signals (store/signals.ts) and acts on
 * them: deliveries committed elsewhere for devices connected here, devices that moved to another
 * process or whose session was ended, revoked API keys. On the same connection it holds, or keeps
 * trying to take, the advisory lock that makes it the leader for the cluster's chores; a process
 * that dies loses its connection and with it the lock.
 *
 * When the listener's connection breaks, signals sent meanwhile are lost: on reconnecting, every
 * channel here reads its queue again and the API key cache is emptied, which is everything a
 * lost signal could have said.
 */
export class Cluster {
  #listener: PoolClient | undefined
  #leader = false
  #stopped = false
  #leaderTimer: NodeJS.Timeout | undefined
  #reconnectTimer: NodeJS.Timeout | undefined

  constructor (private readonly deps: ClusterDeps) {}

  /** Whether this process runs the cluster's chores now. */
  get isLeader (): boolean {
    return this.#leader
  }

  async start (): Promise<void> {
    await this.#listen()
    this.#leaderTimer = setInterval(() => { void this.#tryToLead() }, LEADER_TRY_MS)
    this.#leaderTimer.unref()
  }

  /** Sends `signal` to the process `nodeId` (dropped by Postgres if nobody listens there). */
  async signalNode (nodeId: string, signal: Signal): Promise<void> {
    await sendSignals(this.deps.pool, [{ channel: nodeChannel(nodeId), signal }])
  }

  /** Sends `signal` to every process, this one included. */
  async signalAll (signal: Signal): Promise<void> {
    await sendSignals(this.deps.pool, [{ channel: CLUSTER_CHANNEL, signal }])
  }

  async stop (): Promise<void> {
    this.#stopped = true
    clearInterval(this.#leaderTimer)
    clearTimeout(this.#reconnectTimer)
    // destroyed, not returned to the pool: it holds LISTENs and maybe the chores' lock
    this.#listener?.release(true)
    this.#listener = undefined
    this.#leader = false
  }

  async #listen (): Promise<void> {
    const { pool, nodeId, log } = this.deps
    const client = await pool.connect()
    try {
      // the name other processes look for in pg_stat_activity to tell this one is alive
      // (store/devices.ts markGoneNodes)
      await client.query(`set application_name = 'herald node ${nodeId}'`)
      await client.query(`listen ${nodeChannel(nodeId)}`)
      await client.query(`listen ${CLUSTER_CHANNEL}`)
    } catch (err) {
      client.release(true)
      throw err
    }
    // stop() ran while this connection was being made (a reconnect after an outage): nobody would
    // ever release it, and the pool's end() waits for every connection it handed out
    if (this.#stopped) {
      client.release(true)
      return
    }
    client.on('notification', message => this.#received(message))
    const lost = (err?: Error): void => {
      if (this.#listener !== client) return
      this.#listener = undefined
      this.#leader = false
      client.release(true)
      if (this.#stopped) return
      log.warn({ err: err?.message }, 'cluster listener connection lost; reconnecting')
      this.#reconnect(RECONNECT_FIRST_MS)
    }
    client.on('error', lost)
    client.on('end', () => lost())
    this.#listener = client
    await this.#tryToLead()
  }

  #reconnect (delayMs: number): void {
    this.#reconnectTimer = setTimeout(() => {
      this.#listen().then(() => {
        if (this.#stopped) return
        this.deps.log.info('cluster listener reconnected; every device here reads its queue again')
        this.deps.engine.wakeAll()
        this.deps.forgetApiKeys()
      }, () => {
        if (!this.#stopped) this.#reconnect(Math.min(delayMs * 2, RECONNECT_MAX_MS))
      })
    }, delayMs)
    this.#reconnectTimer.unref()
  }

  async #tryToLead (): Promise<void> {
    const client = this.#listener
    if (this.#leader || client === undefined) return
    try {
      const { rows } = await client.query<{ ok: boolean }>(`select pg_try_advisory_lock(${CHORES_LOCK}) as ok`)
      if (rows[0].ok && this.#listener === client) {
        this.#leader = true
        this.deps.log.info('this process runs the cluster\'s chores')
      }
    } catch {
      // the connection's error handler reconnects
    }
  }

  #received (message: Notification): void {
    const signal = message.payload === undefined ? undefined : decodeSignal(message.payload)
    if (!signal) {
      this.deps.log.warn({ channel: message.channel }, 'unreadable cluster signal ignored')
      return
    }
    const { engine, log } = this.deps
    switch (signal.kind) {
      case 'queued':
        engine.wake(signal.devices)
        if (signal.live.length > 0) {
          engine.offerLive(signal.live).catch(err =>
            log.warn({ err: (err as Error).message }, 'reading ttl 0 deliveries of another process failed'))
        }
        return
      case 'moved':
        void this.#closeMoved(signal.devices)
        return
      case 'ended':
        for (const id of signal.devices) engine.closeDevice(id)
        return
      case 'api-key-revoked':
        this.deps.forgetApiKeys()
    }
  }

  /** MQTT 3.1.1 [MQTT-3.1.4-2]: a client id connecting again ends its older connection, wherever it is. */
  async #closeMoved (deviceIds: string[]): Promise<void> {
    const here = this.deps.engine.connectedHere(deviceIds)
    if (here.length === 0) return
    try {
      const moved = await devicesConnectedElsewhere(this.deps.pool, this.deps.nodeId, here)
      for (const id of moved) this.deps.engine.closeDevice(id)
      if (moved.length > 0) {
        this.deps.log.info({ devices: moved }, 'closed connections of devices that connected elsewhere')
      }
    } catch (err) {
      this.deps.log.warn({ err: (err as Error).message }, 'checking devices that connected elsewhere failed')
    }
  }
}
