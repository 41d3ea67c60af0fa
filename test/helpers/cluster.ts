// Helpers for the cluster tests (test/cluster*.test.ts): waiting for a device's messages or its
// connection's end, holding PUBACKs, checking delivery order against the seqs Postgres gave,
// devices that move to another process when theirs goes away, a sender that retries elsewhere,
// and who holds the chores' lock.
import assert from 'node:assert/strict'
import mqtt, { type MqttClient } from 'mqtt'
import type pg from 'pg'
import { CHORES_LOCK } from '../../server/store/devices.js'
import type { TestDevice } from './herald.js'

/** Resolves once `d` has received every one of `messageIds` (by payload id). */
export function arrivals (d: TestDevice, messageIds: string[], timeoutMs: number, what: string): Promise<void> {
  const missing = (): string[] => {
    const have = new Set(d.received.map(r => r.payload.id))
    return messageIds.filter(id => !have.has(id))
  }
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (missing().length > 0) return
      clearTimeout(timer)
      d.client.off('message', check)
      resolve()
    }
    const timer = setTimeout(() => {
      d.client.off('message', check)
      reject(new Error(`${what}: ${missing().length} of ${messageIds.length} never arrived within ${timeoutMs} ms`))
    }, timeoutMs)
    // the device's own listener (herald.ts) was added first, so `received` already has it here
    d.client.on('message', check)
    check()
  })
}

/**
 * Watches for the end of `d`'s connection from now on; the function returned resolves with how
 * many ms after `from` it closed (negative if before), or rejects after `timeoutMs`.
 */
export function closedWithin (d: { client: MqttClient }): (from: number, timeoutMs: number) => Promise<number> {
  let closedAt: number | undefined
  const closed = new Promise<number>(resolve => d.client.once('close', () => resolve(closedAt = Date.now())))
  return (from, timeoutMs) => closedAt !== undefined
    ? Promise.resolve(closedAt - from)
    : new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the connection was still open ${timeoutMs} ms on`)), timeoutMs)
      void closed.then(at => { clearTimeout(timer); resolve(at - from) })
    })
}

/** Holds every PUBACK of `d` from now on; the function returned sends them and acknowledges at once after. */
export function holdAcks (d: TestDevice): () => void {
  const client = d.client as unknown as { handleMessage: (packet: unknown, callback: () => void) => void }
  const held: Array<() => void> = []
  let holding = true
  client.handleMessage = (_packet, callback) => { if (holding) held.push(callback); else callback() }
  return () => {
    holding = false
    for (const callback of held.splice(0)) callback()
  }
}

/** message id → the seq of its delivery to `deviceId`: commit order of the accepts. */
export async function deliverySeqs (pool: pg.Pool, deviceId: string): Promise<Map<string, number>> {
  const { rows } = await pool.query<{ id: string, seq: string }>(
    'select message_id::text as id, seq::text as seq from deliveries where device_id = $1', [deviceId])
  return new Map(rows.map(r => [r.id, Number(r.seq)]))
}

interface Arrival { payload: { id: string } }

/**
 * Per device, messages arrive in accept order: each connection's stream has increasing seqs
 * (no message twice on one connection), and so has the stream of first arrivals, when `firsts`
 * (every arrival on any connection, in the order they happened) is given.
 */
export function assertSeqOrder (seqOf: Map<string, number>, streams: Arrival[][], names: string[],
  firsts?: Arrival[]): void {
  const check = (stream: Arrival[], what: string): void => {
    const seqs = stream.map(r => seqOf.get(r.payload.id))
    seqs.forEach((seq, i) => assert.notEqual(seq, undefined, `${what}: ${stream[i].payload.id} has no delivery row`))
    for (let i = 1; i < seqs.length; i++) {
      assert.ok(seqs[i]! > seqs[i - 1]!, `${what}: seq ${seqs[i]} came after ${seqs[i - 1]} (#${i} of ${seqs.length})`)
    }
  }
  streams.forEach((s, i) => check(s, names[i]))
  if (firsts) {
    const seen = new Set<string>()
    check(firsts.filter(r => !seen.has(r.payload.id) && seen.add(r.payload.id)), 'first arrivals')
  }
}

export interface RoamingArrival { payload: { id: string, [k: string]: unknown }, connection: number, url: string }

/**
 * A persistent mqtt.js device that, whenever its connection ends, connects again to a process
 * `pick` names (not the one it was on, while there is another), as an app behind a load balancer
 * does. It subscribes to its inbox on its first connection only: the session keeps it.
 */
export class RoamingDevice {
  /** every message, on every connection, in arrival order */
  readonly received: RoamingArrival[] = []
  /** the URL of each connection made, in order */
  readonly connections: string[] = []
  client: MqttClient | undefined
  #stopped = false
  #waiters: Array<() => void> = []

  constructor (
    readonly user: string,
    readonly clientId: string,
    private readonly token: string,
    /** a process to connect to, other than `not` if there is one */
    private readonly pick: (not: string | undefined) => string,
    /** ms before each PUBACK: a slow device keeps messages in flight */
    private readonly ackDelayMs = 0
  ) {}

  /** Connects (to `url`) and subscribes to the inbox. */
  async start (url: string): Promise<void> {
    const client = await this.#connect(url)
    const granted = await client.subscribeAsync(`users/${this.user}/inbox`, { qos: 1 })
    assert.equal(granted[0]?.qos, 1)
  }

  get url (): string | undefined {
    return this.connections.at(-1)
  }

  /** The messages received so far, each once, by id. */
  ids (): Set<string> {
    return new Set(this.received.map(r => r.payload.id))
  }

  /** Resolves once every one of `messageIds` has arrived (on any connection). */
  async waitFor (messageIds: string[], timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const have = this.ids()
      const missing = messageIds.filter(id => !have.has(id))
      if (missing.length === 0) return
      if (Date.now() > deadline) {
        throw new Error(`${this.clientId} lacks ${missing.length} of ${messageIds.length} after ${timeoutMs} ms ` +
          `(connections: ${this.connections.join(', ')}), e.g. ${missing.slice(0, 3).join(', ')}`)
      }
      await new Promise<void>(resolve => {
        const timer = setTimeout(resolve, Math.min(250, deadline - Date.now() + 1))
        this.#waiters.push(() => { clearTimeout(timer); resolve() })
      })
    }
  }

  stop (): void {
    this.#stopped = true
    this.client?.end(true)
  }

  #connect (url: string): Promise<MqttClient> {
    const client = mqtt.connect(url, {
      protocolVersion: 4,
      reconnectPeriod: 0,
      connectTimeout: 5_000,
      clean: false,
      clientId: this.clientId,
      username: 'device',
      password: this.token
    })
    const connection = this.connections.length
    this.connections.push(url)
    this.client = client
    if (this.ackDelayMs > 0) {
      const c = client as unknown as { handleMessage: (packet: unknown, callback: () => void) => void }
      c.handleMessage = (_packet, callback) => { setTimeout(callback, this.ackDelayMs) }
    }
    client.on('message', (_topic, raw) => {
      this.received.push({ payload: JSON.parse(raw.toString()), connection, url })
      for (const w of this.#waiters.splice(0)) w()
    })
    client.on('error', () => {}) // a refused or broken connection ends in 'close', handled there
    let connected = false
    let roaming = false
    client.on('close', () => {
      // a connection that never got its CONNACK is #roam's to retry
      if (this.#stopped || !connected || roaming) return
      roaming = true
      client.end(true)
      setTimeout(() => { void this.#roam(url) }, 50)
    })
    return new Promise((resolve, reject) => {
      client.once('connect', () => { connected = true; resolve(client) })
      client.once('close', () => {
        if (connected) return
        client.end(true)
        reject(new Error(`${this.clientId}: connection to ${url} closed before CONNACK`))
      })
    })
  }

  async #roam (from: string): Promise<void> {
    let not: string | undefined = from
    while (!this.#stopped) {
      const url = this.pick(not)
      try {
        await this.#connect(url)
        return
      } catch {
        // that one is going away too: another one, a moment later
        not = url
        await new Promise(resolve => setTimeout(resolve, 100))
      }
    }
  }
}

/** The ids of the nodes holding the cluster's chores lock in `pool`'s database (services/cluster.ts). */
export async function choresHolders (pool: pg.Pool): Promise<string[]> {
  const { rows } = await pool.query<{ name: string }>(
    `select a.application_name as name
       from pg_locks l join pg_stat_activity a on a.pid = l.pid
      where l.locktype = 'advisory' and l.granted and l.classid = 0 and l.objid = $1 and l.objsubid = 1
        and l.database = (select oid from pg_database where datname = current_database())`, [CHORES_LOCK])
  return rows.map(r => r.name.replace(/^herald node /, ''))
}

/**
 * Samples who holds the chores' lock every `everyMs` until the function returned is called,
 * which gives the most holders seen at once (there must never be two).
 */
export function watchChores (pool: pg.Pool, everyMs = 100): () => Promise<{ most: number, samples: number }> {
  let most = 0
  let samples = 0
  const state = { stopped: false }
  const loop = (async () => {
    while (!state.stopped) {
      const holders = await choresHolders(pool)
      most = Math.max(most, holders.length)
      samples++
      await new Promise(resolve => setTimeout(resolve, everyMs))
    }
  })()
  return async () => {
    state.stopped = true
    await loop
    return { most, samples }
  }
}
