import mqttPacket from 'mqtt-packet'
import type { Client } from 'aedes'
import type { Pool } from '../db/pool.js'
import type { Logger } from '../log.js'
import { broadcastTopic, inboxTopic } from '../ids.js'
import { KeyedBatcher } from '../db/keyedBatcher.js'
import { discardDeviceQueue, pendingForDevices, type PendingDelivery } from '../store/deliveries.js'
import type { DeliveryStateWriter } from './stateWriter.js'

/** Rows read from a device's queue at a time, so a huge backlog is streamed, not loaded whole. */
const PAGE_SIZE = 1_000
/** The first read after a connect is short, so the first PUBLISH does not wait for a thousand rows. */
const FIRST_PAGE_SIZE = 100
/** The next page is read while this many entries are still waiting, so the device never waits for the read. */
const PREFETCH_BELOW = PAGE_SIZE / 2

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
}

export interface DeliveryObserver {
  /** a device acknowledged a message `latencyMs` after it was accepted */
  delivered?: (latencyMs: number) => void
}

function topicFor (userId: string, topic: string | null): string {
  return topic === null ? inboxTopic(userId) : broadcastTopic(topic)
}

/**
 * Sends every device its queue, in seq (accept) order, over its live MQTT connection.
 *
 * Herald writes push PUBLISHes itself rather than through aedes' own offline queue: the
 * deliveries table is the queue, so there is one copy of each message, its state is what the
 * admin reads, and expiry, collapse and revoke are enforced here just before each write.
 * aedes still runs the protocol (CONNECT, SUBSCRIBE, keep-alive, PUBACK parsing); PUBACKs
 * reach `ack` through the persistence's `outgoingAcks` hook.
 */
export class DeliveryEngine {
  private readonly channels = new Map<string, DeviceChannel>()
  /** devices reconnecting together read their queues in one statement; every read has its own key */
  private readonly pages = new KeyedBatcher<{ deviceId: string, afterSeq: number, limit: number }, PendingDelivery[]>(async requests => {
    const pages = await pendingForDevices(this.pool, requests.map(([, page]) => page))
    return new Map(requests.map(([key], i) => [key, pages[i]]))
  }, [])

  private pageReads = 0

  constructor (
    private readonly pool: Pool,
    private readonly writer: DeliveryStateWriter,
    private readonly log: Logger,
    private readonly maxInflight: number,
    private readonly observer: DeliveryObserver = {}
  ) {}

  get connectedDevices (): number {
    return this.channels.size
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
        liveOnly: item.liveOnly
      })
    }
  }

  /** Replaced or revoked deliveries must not be written any more. */
  withdraw (messageId: string, deviceIds: Iterable<string>): void {
    for (const deviceId of deviceIds) this.channels.get(deviceId)?.withdraw(messageId)
  }

  /** Withdraws a whole device queue (session ended by an admin). */
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

  /** @internal a clean session's leftovers, up to the last seq its channel knew of */
  discardQueue (deviceId: string, uptoSeq: number): void {
    discardDeviceQueue(this.pool, deviceId, uptoSeq, 'expired')
      .catch(err => this.log.warn({ err: (err as Error).message, deviceId }, 'expiring a clean session\'s queue failed; the next connect or the expiry sweep does it'))
  }

  /** @internal used by channels */
  loadPage (deviceId: string, afterSeq: number, limit: number): Promise<PendingDelivery[]> {
    return this.pages.get(String(++this.pageReads), { deviceId, afterSeq, limit })
  }

  /** @internal */
  get internals (): { writer: DeliveryStateWriter, log: Logger, maxInflight: number, observer: DeliveryObserver } {
    return { writer: this.writer, log: this.log, maxInflight: this.maxInflight, observer: this.observer }
  }
}

/**
 * One connected device. Holds the part of its queue that is read into memory (`queue`, in seq
 * order) and what is written but not yet acknowledged (`inflight`, by MQTT message id).
 *
 * Order without gaps: the channel exists before its first page is read, so every delivery
 * committed later is offered to it. While the database still holds unread rows (`moreInDb`),
 * offered entries are dropped: they are committed, have higher seqs, and come with a later page.
 */
class DeviceChannel {
  private queue: Entry[] = []
  private readonly inflight = new Map<number, Entry>()
  private readonly withdrawn = new Set<string>()
  private offeredWhileLoading: Entry[] = []
  private lastSeq = 0
  private moreInDb = true
  private pagesRead = 0
  private loading = false
  private closed = false
  private waitingForDrain = false

  constructor (readonly client: Client, private readonly engine: DeliveryEngine) {}

  start (): void {
    void this.loadNextPage()
  }

  offer (entry: Entry): void {
    if (this.closed) return
    if (this.loading) {
      this.offeredWhileLoading.push(entry)
      return
    }
    if (this.moreInDb && !entry.liveOnly) return // comes with a later page
    if (entry.seq <= this.lastSeq && !entry.liveOnly) return
    this.lastSeq = Math.max(this.lastSeq, entry.seq)
    this.queue.push(entry)
    this.pump()
  }

  withdraw (messageId: string): void {
    this.withdrawn.add(messageId)
  }

  ack (messageId: number): object | undefined {
    const entry = this.inflight.get(messageId)
    if (!entry) return undefined
    this.inflight.delete(messageId)
    const { writer, observer } = this.engine.internals
    writer.delivered(entry.seq)
    observer.delivered?.(Date.now() - entry.acceptedAt)
    this.pump()
    return { cmd: 'publish', topic: entry.topic, payload: entry.payload, qos: 1, messageId }
  }

  close (reason: string): void {
    if (this.closed) return
    this.closed = true
    const { writer, log } = this.engine.internals
    if (this.client.clean) {
      // a clean session ends with its connection: what it did not acknowledge can never reach it
      if (this.lastSeq > 0) this.engine.discardQueue(this.client.id, this.lastSeq)
    } else {
      // ttl-0 messages were for this connection only; the rest stay queued (or sent) for the next one
      for (const entry of [...this.inflight.values(), ...this.queue, ...this.offeredWhileLoading]) {
        if (entry.liveOnly) writer.expired(entry.seq)
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
    const limit = this.pagesRead++ === 0 ? FIRST_PAGE_SIZE : PAGE_SIZE
    try {
      rows = await this.engine.loadPage(this.client.id, this.lastSeq, limit)
    } catch (err) {
      this.loading = false
      log.warn({ err, deviceId: this.client.id }, 'reading device queue failed; disconnecting so the device retries')
      this.client.close()
      return
    }
    this.loading = false
    if (this.closed) return
    for (const row of rows) {
      this.queue.push({
        seq: row.seq,
        messageId: row.messageId,
        topic: topicFor(row.userId, row.topic),
        payload: row.payload,
        expiresAt: row.expiresAt,
        acceptedAt: row.queuedAt,
        liveOnly: false
      })
      this.lastSeq = row.seq
    }
    this.moreInDb = rows.length === limit
    const offered = this.offeredWhileLoading
    this.offeredWhileLoading = []
    for (const entry of offered) this.offer(entry)
    this.pump()
  }

  private pump (): void {
    if (this.closed || this.waitingForDrain) return
    const { writer, maxInflight } = this.engine.internals
    const now = Date.now()
    while (this.inflight.size < maxInflight && this.queue.length > 0) {
      const entry = this.queue.shift()!
      if (this.withdrawn.has(entry.messageId)) continue
      if (!entry.liveOnly && entry.expiresAt <= now) {
        writer.expired(entry.seq)
        continue
      }
      const messageId = this.nextMessageId()
      this.inflight.set(messageId, entry)
      const flushed = mqttPacket.writeToStream(
        { cmd: 'publish', topic: entry.topic, payload: entry.payload, qos: 1, messageId, dup: false, retain: false },
        this.client.conn as unknown as NodeJS.WritableStream)
      writer.sent(entry.seq)
      if (!flushed) {
        // the socket buffer is full: continue when it drains, so a slow device cannot hoard memory
        this.waitingForDrain = true
        this.client.conn.once('drain', () => { this.waitingForDrain = false; this.pump() })
        return
      }
    }
    if (this.queue.length < PREFETCH_BELOW && this.moreInDb && !this.loading) void this.loadNextPage()
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
