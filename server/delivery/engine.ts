import mqttPacket from 'mqtt-packet'
import type { Client } from 'aedes'
import type { Pool } from '../db/pool.js'
import type { Logger } from '../log.js'
import { broadcastTopic, inboxTopic } from '../ids.js'
import { KeyedBatcher } from '../db/batching.js'
import {
  claimForSending, discardDeviceQueue, firstPagesForDevices, liveDeliveries, pendingForDevices, unclaim,
  type PendingDelivery
} from '../store/deliveries.js'
import type { DeliveryStateWriter } from './stateWriter.js'

/** Rows read from a device's queue at a time, so a huge backlog is streamed, not loaded whole. */
const PAGE_SIZE = 1_000
/** The first read after a connect is short, so the first PUBLISH does not wait for a thousand rows. */
const FIRST_PAGE_SIZE = 100
/** The next page is read while this many entries are still waiting, so the device never waits for the read. */
const PREFETCH_BELOW = PAGE_SIZE / 2
/**
 * Most entries a channel holds in memory besides those in flight: a page and the prefetch
 * margin. Past it, new deliveries stay in Postgres and come with a later page, so a device that
 * stops reading costs at most this much however long its queue grows.
 */
const MAX_QUEUED_IN_MEMORY = PAGE_SIZE + PREFETCH_BELOW
/**
 * After a failed claim or read of its queue (database unreachable) the channel tries again this
 * much later. The connection stays: the device is served as soon as the database answers again,
 * instead of every device reconnecting at once when it does.
 */
const DATABASE_RETRY_MS = 1_000

/** One read of a device's queue: up to `limit` rows after `afterSeq`. */
interface PageRequest { deviceId: string, afterSeq: number, limit: number }

interface Entry {
  seq: number
  messageId: string
  topic: string
  payload: Buffer
  expiresAt: number
  /** when the message was accepted, ms since the epoch (for the accept→PUBACK latency) */
  acceptedAt: number
  /** ttl 0: only for this connection; never read back from the queue */
  liveOnly: boolean
  /** for an offer: the device's previous undelivered seq, when other processes may have committed it (NewDelivery) */
  after?: number
}

export interface DispatchItem {
  seq: number
  messageId: string
  deviceId: string
  userId: string
  topic: string | null
  payload: Buffer
  expiresAt: Date
  acceptedAt: Date
  liveOnly: boolean
  /** see NewDelivery.after */
  after?: number
}

export interface DeliveryObserver {
  /** a device acknowledged a message `latencyMs` after it was accepted */
  delivered?: (latencyMs: number) => void
  /** a device made no progress for the stall limit and was disconnected */
  stalled?: () => void
}

export interface ChannelLimits {
  /** unacknowledged PUBLISHes per connection */
  maxInflight: number
  /**
   * a connection that owes PUBACKs (or whose socket stays unwritable) and makes no progress for
   * this long is closed; its queue stays in Postgres
   */
  stalledDeviceTimeoutMs: number
}

function topicFor (userId: string, topic: string | null): string {
  return topic === null ? inboxTopic(userId) : broadcastTopic(topic)
}

/** A queue row read from Postgres, as a channel holds it. */
function entryOf (row: PendingDelivery, liveOnly: boolean): Entry {
  return {
    seq: row.seq,
    messageId: row.messageId,
    topic: topicFor(row.userId, row.topic),
    payload: row.payload,
    expiresAt: row.expiresAt,
    acceptedAt: row.queuedAt,
    liveOnly
  }
}

/**
 * Sends every device its queue, in seq (accept) order, over its live MQTT connection.
 *
 * Herald writes push PUBLISHes itself rather than through aedes' own offline queue: the
 * deliveries table is the queue, so there is one copy of each message, its state is what the
 * admin reads, and expiry, collapse and revoke are enforced just before each write: a channel
 * claims rows (claimForSending) and writes only those the claim returns. aedes still runs the
 * protocol (CONNECT, SUBSCRIBE, keep-alive, PUBACK parsing); PUBACKs reach `ack` through the
 * persistence's `outgoingAcks` hook.
 */
export class DeliveryEngine {
  private readonly channels = new Map<string, DeviceChannel>()
  /** devices reconnecting together read their queues in one statement; every read has its own key */
  private readonly pages = new KeyedBatcher<PageRequest, PendingDelivery[]>(async requests => {
    const pages = await pendingForDevices(this.pool, requests.map(([, page]) => page))
    return new Map(requests.map(([key], i) => [key, pages[i]]))
  }, [])

  /** the first page after a connect, read once accepts running now have committed (see firstPagesForDevices) */
  private readonly firstPages = new KeyedBatcher<PageRequest, PendingDelivery[]>(
    async requests => {
      const pages = await firstPagesForDevices(this.pool, requests.map(([, page]) => page))
      return new Map(requests.map(([key], i) => [key, pages[i]]))
    }, [])

  /** channels claiming together (a topic message to many devices) claim in one statement */
  private readonly claims = new KeyedBatcher<number[], Claimed[]>(async requests => {
    const all = requests.flatMap(([, seqs]) => seqs)
    const claimed = new Map((await claimForSending(this.pool, all)).map(c => [c.seq, c]))
    return new Map(requests.map(([key, seqs]) => [key, seqs.flatMap(seq => claimed.get(seq) ?? [])]))
  }, [])

  private requests = 0

  constructor (
    private readonly pool: Pool,
    private readonly writer: DeliveryStateWriter,
    private readonly log: Logger,
    private readonly limits: ChannelLimits,
    private readonly observer: DeliveryObserver = {},
    /** this process: a clean session's queue is only ended while the device is not connected elsewhere */
    private readonly nodeId?: string
  ) {}

  get connectedDevices (): number {
    return this.channels.size
  }

  /** Deliveries held in channels' memory: each channel holds at most MAX_QUEUED_IN_MEMORY plus its window. */
  get bufferedDeliveries (): number {
    let n = 0
    for (const channel of this.channels.values()) n += channel.buffered
    return n
  }

  /** Called once the device's CONNACK went out. */
  attach (client: Client): void {
    const previous = this.channels.get(client.id)
    previous?.close('replaced by a new connection')
    const channel = new DeviceChannel(client, this)
    this.channels.set(client.id, channel)
    channel.start()
  }

  detach (client: Client): void {
    const channel = this.channels.get(client.id)
    if (channel?.client !== client) return
    this.channels.delete(client.id)
    channel.close('disconnected')
  }

  /** New deliveries just committed: hand each to its device's channel if it is connected here. */
  dispatch (items: DispatchItem[]): void {
    for (const item of items) {
      this.channels.get(item.deviceId)?.offer({
        seq: item.seq,
        messageId: item.messageId,
        topic: topicFor(item.userId, item.topic),
        payload: item.payload,
        expiresAt: item.expiresAt.getTime(),
        acceptedAt: item.acceptedAt.getTime(),
        liveOnly: item.liveOnly,
        after: item.after
      })
    }
  }

  /**
   * Another process committed deliveries for these devices (a cluster signal): a channel here
   * reads them from its queue. Devices not connected here are not this process' business.
   */
  wake (deviceIds: Iterable<string>): void {
    for (const id of deviceIds) this.channels.get(id)?.wake()
  }

  /** Every channel reads its queue again: after this process may have missed signals. */
  wakeAll (): void {
    for (const channel of this.channels.values()) channel.wake()
  }

  /**
   * ttl-0 deliveries another process committed for devices connected here: never read back from
   * a queue, so they are read by seq and offered as the accepting process would have.
   */
  async offerLive (seqs: number[]): Promise<void> {
    const rows = await liveDeliveries(this.pool, seqs)
    for (const row of rows) {
      this.channels.get(row.deviceId)?.offer(entryOf(row, true))
    }
  }

  /** The devices with a connection here (for checking which of them moved to another process). */
  connectedHere (deviceIds: Iterable<string>): string[] {
    return [...deviceIds].filter(id => this.channels.has(id))
  }

  /** Closes the device's connection if it is connected here; its queue is the caller's business. */
  closeDevice (deviceId: string): boolean {
    const channel = this.channels.get(deviceId)
    if (!channel) return false
    channel.client.close()
    return true
  }

  /** A PUBACK from a device: returns the packet it acknowledged if Herald sent it, else undefined. */
  ack (client: Client, messageId: number): object | undefined {
    const channel = this.channels.get(client.id)
    if (channel?.client !== client) return undefined
    return channel.ack(messageId)
  }

  /** @internal a clean session's leftovers, up to the last seq its channel heard of */
  discardQueue (deviceId: string, uptoSeq: number): void {
    discardDeviceQueue(this.pool, deviceId, uptoSeq, 'clean-session-ended', this.nodeId)
      .catch(err => this.log.warn({ err: (err as Error).message, deviceId },
        'expiring a clean session\'s queue failed; the next connect or the expiry sweep does it'))
  }

  /** @internal used by channels */
  loadPage (deviceId: string, afterSeq: number, limit: number, first: boolean): Promise<PendingDelivery[]> {
    return (first ? this.firstPages : this.pages).get(String(++this.requests), { deviceId, afterSeq, limit })
  }

  /** @internal the rows of `seqs` a channel may write now (see claimForSending) */
  claim (seqs: number[]): Promise<Claimed[]> {
    return this.claims.get(String(++this.requests), seqs)
  }

  /** @internal rows claimed by a connection that closed before writing them */
  unclaim (deviceId: string, seqs: number[]): void {
    if (seqs.length === 0) return
    unclaim(this.pool, seqs)
      .catch(err => this.log.warn({ err: (err as Error).message, deviceId },
        'returning unwritten rows to the queue failed; they are sent on the next connect'))
  }

  /** @internal */
  get internals (): { writer: DeliveryStateWriter, log: Logger, limits: ChannelLimits, observer: DeliveryObserver } {
    return { writer: this.writer, log: this.log, limits: this.limits, observer: this.observer }
  }
}

interface Claimed { seq: number, firstSent: boolean }
/** A claim in flight; given up when it or an earlier one failed (its entries were queued again). */
interface PendingClaim { batch: Entry[], givenUp: boolean, claimed?: Claimed[] }

/**
 * One connected device. Holds the part of its queue that is read into memory (`queue`, in seq
 * order, at most MAX_QUEUED_IN_MEMORY entries) and what is written but not yet acknowledged
 * (`inflight`, by MQTT message id, at most maxInflight).
 *
 * Order without gaps: the channel exists before its first page is read, so every delivery
 * committed later is offered to it. While the database still holds unread rows (`moreInDb`),
 * offered entries are dropped: they are committed, have higher seqs, and come with a later page.
 * The same holds when memory is full: the channel stops taking offers and reads them later.
 *
 * Each write is preceded by a claim: the rows about to be written become `sent` in Postgres,
 * and a row replaced, revoked or expired since it was read is not claimed and not written.
 */
class DeviceChannel {
  private queue: Entry[] = []
  private readonly inflight = new Map<number, Entry>()
  private offeredWhileLoading: Entry[] = []
  /** an offer did not fit while a page was being read: what follows the page is still in the database */
  private overflowedWhileLoading = false
  /** the last seq of the durable queue taken into memory: the next page starts after it */
  private lastSeq = 0
  /** the highest seq this connection heard of, ttl-0 messages included: a clean session ends up to it */
  private highestSeq = 0
  private moreInDb = true
  private pagesRead = 0
  private loading = false
  /** claims in flight, oldest first: their rows are written in this order, whatever order they complete in */
  private readonly claims: PendingClaim[] = []
  /** entries in those claims */
  private claiming = 0
  private closed = false
  /** set while the socket buffer is full and writing waits for it to drain */
  private onDrain: (() => void) | undefined
  /** the last PUBACK or drain, or the first write after the window was empty */
  private lastProgressAt = 0
  private stallTimer: NodeJS.Timeout | undefined
  private claimRetry: NodeJS.Timeout | undefined
  /** set while a failed read of the queue waits to be tried again */
  private readRetry: NodeJS.Timeout | undefined

  constructor (readonly client: Client, private readonly engine: DeliveryEngine) {}

  start (): void {
    void this.loadNextPage()
  }

  get buffered (): number {
    return this.queue.length + this.inflight.size + this.offeredWhileLoading.length + this.claiming
  }

  offer (entry: Entry): void {
    if (this.closed) return
    this.highestSeq = Math.max(this.highestSeq, entry.seq)
    if (this.loading) {
      if (this.offeredWhileLoading.length < MAX_QUEUED_IN_MEMORY) this.offeredWhileLoading.push(entry)
      else if (entry.liveOnly) this.engine.internals.writer.expired(entry.seq, 'ttl-ended')
      else this.overflowedWhileLoading = true
      return
    }
    if (!entry.liveOnly) {
      if (this.moreInDb || entry.seq <= this.lastSeq) return // comes with a later page, or is here already
      if (entry.after !== undefined && entry.after > this.lastSeq) {
        // an earlier row, committed by another process, is not read yet (its signal is on its
        // way, or was lost): read the queue, which holds both in order, rather than skip ahead
        this.moreInDb = true
        this.pump()
        return
      }
      if (this.queue.length >= MAX_QUEUED_IN_MEMORY) {
        this.moreInDb = true // stays in Postgres until the device catches up
        return
      }
      this.lastSeq = entry.seq
    } else if (this.queue.length >= MAX_QUEUED_IN_MEMORY) {
      // ttl 0: for a device that can take it now, and this one cannot
      this.engine.internals.writer.expired(entry.seq, 'ttl-ended')
      return
    }
    this.queue.push(entry)
    this.pump()
  }

  /**
   * Rows were committed for this device elsewhere: they follow what is in memory, so the queue
   * is read again after the last seq taken (during a read, once it returns: the read may have
   * started before their commit).
   */
  wake (): void {
    if (this.closed) return
    if (this.loading) {
      this.overflowedWhileLoading = true
      return
    }
    this.moreInDb = true
    this.pump()
  }

  ack (messageId: number): object | undefined {
    const entry = this.inflight.get(messageId)
    if (!entry) return undefined
    this.inflight.delete(messageId)
    this.lastProgressAt = Date.now()
    const { writer, observer } = this.engine.internals
    writer.delivered(entry.seq)
    observer.delivered?.(Date.now() - entry.acceptedAt)
    this.pump()
    return { cmd: 'publish', topic: entry.topic, payload: entry.payload, qos: 1, messageId }
  }

  close (reason: string): void {
    if (this.closed) return
    this.closed = true
    this.stopWaitingForDrain()
    clearTimeout(this.claimRetry)
    clearTimeout(this.readRetry)
    clearTimeout(this.stallTimer)
    const { writer, log } = this.engine.internals
    if (this.client.clean) {
      // a clean session ends with its connection: what it did not acknowledge can never reach it
      if (this.highestSeq > 0) this.engine.discardQueue(this.client.id, this.highestSeq)
    } else {
      // ttl-0 messages were for this connection only; the rest stay queued (or sent) for the next one
      for (const entry of [...this.inflight.values(), ...this.queue, ...this.offeredWhileLoading]) {
        if (entry.liveOnly) writer.expired(entry.seq, 'connection-ended')
      }
    }
    log.debug({ deviceId: this.client.id, reason, inflight: this.inflight.size }, 'device channel closed')
    this.queue = []
    this.offeredWhileLoading = []
    this.inflight.clear()
  }

  private async loadNextPage (): Promise<void> {
    if (this.loading || this.closed) return
    this.loading = true
    const { log } = this.engine.internals
    let rows: PendingDelivery[]
    // the first read stays the first (taken under the accept lock: DeliveryEngine.loadPage) until it succeeds
    const first = this.pagesRead === 0
    const limit = first ? FIRST_PAGE_SIZE : PAGE_SIZE
    try {
      rows = await this.engine.loadPage(this.client.id, this.lastSeq, limit, first)
    } catch (err) {
      this.loading = false
      if (this.closed) return
      log.warn({ err, deviceId: this.client.id }, 'reading device queue failed; retrying')
      this.readRetry = setTimeout(() => {
        this.readRetry = undefined
        void this.loadNextPage()
      }, DATABASE_RETRY_MS).unref()
      return
    }
    this.pagesRead++
    this.loading = false
    if (this.closed) return
    for (const row of rows) {
      this.queue.push(entryOf(row, false))
      this.lastSeq = row.seq
    }
    this.moreInDb = rows.length === limit || this.overflowedWhileLoading
    this.overflowedWhileLoading = false
    const offered = this.offeredWhileLoading
    this.offeredWhileLoading = []
    for (const entry of offered) this.offer(entry)
    this.pump()
  }

  /**
   * Claims what fits in the in-flight window (written and claiming together). A claim may start
   * while earlier ones are in flight, so a backlog drains without waiting a round trip per
   * window refill; rows are written in claim order, so the device still gets seq order.
   */
  private pump (): void {
    if (this.closed || this.onDrain !== undefined) return
    const { writer, limits } = this.engine.internals
    const batch: Entry[] = []
    const now = Date.now()
    while (this.inflight.size + this.claiming + batch.length < limits.maxInflight && this.queue.length > 0) {
      const entry = this.queue.shift()!
      if (!entry.liveOnly && entry.expiresAt <= now) writer.expired(entry.seq, 'ttl-ended')
      else batch.push(entry)
    }
    if (batch.length > 0) this.claim(batch)
    if (this.queue.length < PREFETCH_BELOW && this.moreInDb && !this.loading && this.readRetry === undefined) {
      void this.loadNextPage()
    }
  }

  private claim (batch: Entry[]): void {
    const pending: PendingClaim = { batch, givenUp: false }
    this.claims.push(pending)
    this.claiming += batch.length
    this.engine.claim(batch.map(e => e.seq)).then(claimed => {
      if (this.closed || pending.givenUp) {
        // nobody will write these: back to the queue they go (a live channel claims them again)
        this.engine.unclaim(this.client.id, claimed.filter(c => c.firstSent).map(c => c.seq))
        return
      }
      pending.claimed = claimed
      this.writeClaimed()
    }, err => { this.claimFailed(pending, err) })
  }

  /** Writes the claims at the head of the line that have come back, in order. */
  private writeClaimed (): void {
    let full = false
    while (this.claims.length > 0 && this.claims[0].claimed !== undefined) {
      const { batch, claimed } = this.claims.shift()!
      this.claiming -= batch.length
      // firstSent false: written to the device before (an earlier connection did not acknowledge it)
      const writable = new Map(claimed!.map(c => [c.seq, c.firstSent]))
      if (this.inflight.size === 0) this.lastProgressAt = Date.now()
      for (const entry of batch) {
        if (!writable.has(entry.seq)) continue // replaced, revoked or expired since it was read
        const messageId = this.nextMessageId()
        this.inflight.set(messageId, entry)
        // every claimed row is written, full buffer or not: they are recorded sent, and at most a window of them
        const flushed = mqttPacket.writeToStream(
          // [MQTT-3.3.1-1]: DUP is set when the server sends a PUBLISH again
          {
            cmd: 'publish',
            topic: entry.topic,
            payload: entry.payload,
            qos: 1,
            messageId,
            dup: !writable.get(entry.seq),
            retain: false
          },
          this.client.conn as unknown as NodeJS.WritableStream)
        if (!flushed) full = true
      }
    }
    if (this.inflight.size > 0) this.watchForStall()
    if (full && this.onDrain === undefined) this.waitForDrain()
    else this.pump()
  }

  /**
   * The database did not answer a claim: it and every later claim are given up (their entries
   * go back to the front of the queue, in order) and the channel tries again a moment later.
   */
  private claimFailed (pending: PendingClaim, err: unknown): void {
    if (this.closed || pending.givenUp) return
    const given = this.claims.splice(this.claims.indexOf(pending))
    for (const c of given) c.givenUp = true
    this.claiming -= given.reduce((n, c) => n + c.batch.length, 0)
    this.queue.unshift(...given.flatMap(c => c.batch))
    this.engine.internals.log.warn({ err, deviceId: this.client.id }, 'claiming deliveries failed; retrying')
    clearTimeout(this.claimRetry)
    this.claimRetry = setTimeout(() => this.pump(), DATABASE_RETRY_MS).unref()
  }

  /** The socket buffer is full: write nothing more until it drains, so a slow device cannot hoard memory. */
  private waitForDrain (): void {
    this.onDrain = () => {
      this.onDrain = undefined
      this.lastProgressAt = Date.now()
      this.pump()
    }
    this.client.conn.once('drain', this.onDrain)
  }

  private stopWaitingForDrain (): void {
    if (this.onDrain === undefined) return
    this.client.conn.removeListener('drain', this.onDrain)
    this.onDrain = undefined
  }

  /**
   * While PUBLISHes are outstanding, the device must make progress (a PUBACK, or its socket
   * draining) within the stall limit. One that stopped reading its socket, or reads and never
   * acknowledges, holds a window of messages in server memory and buffers: it is disconnected,
   * and its rows stay in Postgres for its next connection. One timer per channel, re-armed
   * for the time left rather than on every PUBACK.
   */
  private watchForStall (): void {
    if (this.stallTimer !== undefined) return
    const { log, limits, observer } = this.engine.internals
    const check = (): void => {
      this.stallTimer = undefined
      if (this.closed || this.inflight.size === 0) return
      const idleMs = Date.now() - this.lastProgressAt
      if (idleMs < limits.stalledDeviceTimeoutMs) {
        this.stallTimer = setTimeout(check, limits.stalledDeviceTimeoutMs - idleMs).unref()
        return
      }
      const unwritable = this.onDrain !== undefined
      log.info({ deviceId: this.client.id, idleMs, inflight: this.inflight.size, unwritable },
        'device made no progress (no PUBACK, socket not drained); disconnecting it, its queue is kept')
      observer.stalled?.()
      this.client.conn.destroy()
    }
    this.stallTimer = setTimeout(check, limits.stalledDeviceTimeoutMs).unref()
  }

  /** Shares aedes' per-client id counter, so ids never clash with packets aedes sends itself. */
  private nextMessageId (): number {
    const client = this.client as unknown as { _nextId: number }
    for (;;) {
      const id = client._nextId
      client._nextId = id >= 65535 ? 1 : id + 1
      if (!this.inflight.has(id)) return id
    }
  }
}
