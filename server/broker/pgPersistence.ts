// aedes' session store in Postgres (aedes-persistence 11, promise interface). Semantics follow the
// in-memory store, node_modules/aedes-persistence/asyncPersistence.js, which the conformance
// suite (test/persistence.conformance.test.ts) checks both against. The SQL is in
// store/mqttSessions.ts; this adapter keeps the orderings, the in-memory subscription index and
// the packet shapes aedes expects.
import { Readable } from 'node:stream'
import type { Client } from 'aedes'
import { KeyedBatcher, KeyedChain, OrderedBatcher } from '../db/batching.js'
import type { Pool } from '../db/pool.js'
import * as sessions from '../store/mqttSessions.js'
import type { OutgoingPacket, QueuedRow, Subscription } from '../store/mqttSessions.js'
import {
  Packet, fromRow, literalPrefix, newSubscriptionBroadcast, newSubscriptionIndex,
  newTopicMatcher, payloadLength, streamOf, toColumns, withMessageId,
  type BrokerRef, type ClientRef, type IndexedSubscription, type MqttPacket, type SubscriptionBroadcast
} from './pgPersistenceSupport.js'

export type { BrokerRef, ClientRef, Subscription } from './pgPersistenceSupport.js'

export interface PgPersistenceOptions {
  /** Shared with the rest of Herald: never created nor ended here. */
  pool: Pool
  /**
   * Herald writes its push PUBLISHes to devices itself, outside aedes' outgoing queue, and learns
   * of their PUBACKs here: aedes asks outgoingClearMessageId about every PUBACK/PUBCOMP. A packet
   * returned claims the ack (aedes emits it with its `ack` event) and no table is touched;
   * undefined lets the ack clear aedes' own queue.
   */
  outgoingAcks?: (client: Client, messageId: number) => object | undefined
  /**
   * Mirror subscription changes to the other processes' indexes over the broker's mq
   * (aedes-persistence/broadcastPersistence.js). Off by default: one process needs no mirroring.
   * Clustering is not finished: a change broadcast while a process loads its index at setup can
   * be overwritten by the rows it loads.
   */
  broadcastSubscriptions?: boolean
}

export class PgPersistence {
  readonly #pool: Pool
  readonly #outgoingAcks: PgPersistenceOptions['outgoingAcks']
  readonly #broadcastSubscriptions: boolean
  // every subscription with QoS > 0, so subscriptionsByTopic (once per publish) never waits on
  // the database; loaded at setup, changed after each successful write
  readonly #index = newSubscriptionIndex()
  readonly #subscriptionWrites = new KeyedChain() // by client id
  readonly #retainedWrites = new KeyedChain() // by topic: the last PUBLISH stored must win
  // by client id: aedes writes a live QoS 1/2 packet to the socket when its outgoingUpdate
  // completes, so updates finishing out of order would reorder a persistent client's messages
  readonly #outgoingUpdates = new KeyedChain()
  readonly #enqueues = new OrderedBatcher<OutgoingPacket>(batch => sessions.enqueueOutgoing(this.#pool, batch))
  // every connect asks for both (a persistent session's subscriptions, any previous will)
  readonly #sessionReads = new KeyedBatcher<null, Subscription[]>(
    requests => sessions.subscriptionsOf(this.#pool, requests.map(([id]) => id)), [])

  readonly #willDeletes = new KeyedBatcher<null, MqttPacket | undefined>(
    async requests => {
      const wills = await sessions.deleteWills(this.#pool, requests.map(([id]) => id))
      return new Map([...wills].map(([clientId, row]) => [clientId, fromRow(row)]))
    }, undefined, { repeat: 'once' })

  #broadcast: SubscriptionBroadcast | undefined
  #broker: BrokerRef | undefined
  #destroyed = false

  constructor ({ pool, outgoingAcks, broadcastSubscriptions = false }: PgPersistenceOptions) {
    this.#pool = pool
    this.#outgoingAcks = outgoingAcks
    this.#broadcastSubscriptions = broadcastSubscriptions
  }

  /** The broker given to setup; the conformance suite reads it. */
  get broker (): BrokerRef | undefined {
    return this.#broker
  }

  // must stay a native async function: aedes checks setup.constructor.name === 'AsyncFunction'
  async setup (broker: BrokerRef): Promise<void> {
    this.#broker = broker
    if (this.#broadcastSubscriptions) {
      this.#broadcast = newSubscriptionBroadcast(broker, this.#index)
      await this.#broadcast.brokerSubscribe()
    }
    for (const { clientId, sub } of await sessions.matchableSubscriptions(this.#pool)) {
      this.#index.add(sub.topic, indexEntry(clientId, sub))
    }
  }

  async storeRetained (packet: MqttPacket): Promise<void> {
    const topic = String(packet.topic)
    // encoded now: the caller may change the packet once we return, as the memory store copies it
    const c = payloadLength(packet) === 0 ? undefined : toColumns(packet)
    await this.#retainedWrites.run(topic, () =>
      c ? sessions.storeRetained(this.#pool, topic, c) : sessions.deleteRetained(this.#pool, topic))
  }

  createRetainedStream (pattern: string): Readable {
    return this.createRetainedStreamCombi([pattern])
  }

  // one result list per pattern, in pattern order, duplicates included, as the memory store does
  createRetainedStreamCombi (patterns: string[]): Readable {
    const perPattern = patterns.map(async pattern => {
      const matcher = newTopicMatcher(pattern)
      // the literal levels before the first wildcard narrow the scan through the primary key;
      // qlobber then decides exactly as the memory store does
      const rows = await sessions.retainedUnder(this.#pool, literalPrefix(pattern))
      return rows.filter(row => matcher.test(row.topic)).map(fromRow)
    })
    return streamOf(Promise.all(perPattern).then(lists => lists.flat()))
  }

  async addSubscriptions (client: ClientRef, subs: Subscription[]): Promise<void> {
    // a topic repeated in one SUBSCRIBE keeps its first position and its last options, like the
    // memory store's Map; one upsert statement may not touch a row twice anyway
    const latest = [...new Map(subs.map(sub => [sub.topic, sub])).values()]
    await this.#subscriptionWrites.run(client.id, async () => {
      if (latest.length > 0) await sessions.upsertSubscriptions(this.#pool, client.id, latest)
      for (const sub of latest) {
        // QoS 0 subscriptions are kept for the session but never matched: nothing is queued for them
        if (sub.qos > 0) this.#index.add(sub.topic, indexEntry(client.id, sub))
        else this.#index.remove(sub.topic, { clientId: client.id, topic: sub.topic })
      }
      if (this.#broadcast && subs.length > 0) await this.#broadcast.addedSubscriptions(client, subs)
    })
  }

  async removeSubscriptions (client: ClientRef, topics: string[]): Promise<void> {
    await this.#subscriptionWrites.run(client.id, () => this.#deleteSubscriptions(client, topics))
  }

  async cleanSubscriptions (client: ClientRef): Promise<void> {
    await this.#subscriptionWrites.run(client.id, () => this.#deleteSubscriptions(client, 'all'))
  }

  async #deleteSubscriptions (client: ClientRef, which: string[] | 'all'): Promise<void> {
    const topics = await sessions.deleteSubscriptions(this.#pool, client.id, which)
    for (const topic of topics) this.#index.remove(topic, { clientId: client.id, topic })
    if (this.#broadcast && topics.length > 0) await this.#broadcast.removedSubscriptions(client, topics)
  }

  async subscriptionsByClient (client: ClientRef): Promise<Subscription[]> {
    return await this.#sessionReads.get(client.id, null)
  }

  async subscriptionsByTopic (topic: string): Promise<IndexedSubscription[]> {
    return this.#index.match(topic)
  }

  async countOffline (): Promise<{ subsCount: number, clientsCount: number }> {
    return await sessions.countSubscriptions(this.#pool)
  }

  getClientList (topic: string): Readable {
    return streamOf(sessions.subscribersOf(this.#pool, topic))
  }

  async outgoingEnqueue (sub: { clientId: string }, packet: MqttPacket): Promise<void> {
    await this.#enqueue([sub.clientId], packet)
  }

  async outgoingEnqueueCombi (subs: Array<{ clientId: string }>, packet: MqttPacket): Promise<void> {
    await this.#enqueue(subs.map(sub => sub.clientId), packet)
  }

  // Even an enqueue for no client goes through the batcher: every call completes in call order.
  #enqueue (clientIds: string[], packet: MqttPacket): Promise<void> {
    // queued without a message id (the broker assigns one on sending), as new Packet() does
    const queued = new Packet(packet)
    return this.#enqueues.push({
      clientIds,
      brokerId: queued.brokerId ?? null,
      brokerCounter: queued.brokerCounter ?? null,
      columns: toColumns(queued, 'messageId')
    })
  }

  // aedes gives this packet its message id (store/mqttSessions.ts assignOutgoingMessageId says which row).
  async outgoingUpdate (client: ClientRef, packet: MqttPacket): Promise<void> {
    const update = {
      brokerId: packet.brokerId ?? null,
      brokerCounter: packet.brokerCounter ?? null,
      messageId: packet.messageId ?? null,
      columns: toColumns(packet, 'messageId')
    }
    const found = await this.#outgoingUpdates.run(client.id,
      () => sessions.assignOutgoingMessageId(this.#pool, client.id, update))
    if (!found) throw new Error('no such packet')
  }

  async outgoingClearMessageId (client: Client, packet: MqttPacket): Promise<MqttPacket | object | undefined> {
    const messageId = packet?.messageId
    if (typeof messageId !== 'number') return undefined
    const claimed = this.#outgoingAcks?.(client, messageId)
    if (claimed !== undefined) return claimed
    const row = await sessions.takeOutgoing(this.#pool, client.id, messageId)
    return row === undefined ? undefined : queuedPacket(row)
  }

  outgoingStream (client: ClientRef): Readable {
    // bounded now, like the memory store's copy of the queue: packets queued during the replay are
    // delivered live and must not come out of this stream as well
    const last = sessions.lastOutgoingId(this.#pool, client.id)
    last.catch(() => {}) // surfaces as the stream's error once read
    const pool = this.#pool
    return Readable.from((async function * () {
      const bound = await last
      if (bound === null) return
      for await (const row of sessions.outgoingUpTo(pool, client.id, bound)) yield queuedPacket(row)
    })())
  }

  async incomingStorePacket (client: ClientRef, packet: MqttPacket): Promise<void> {
    await sessions.storeIncoming(this.#pool, client.id, packet.messageId, toColumns(new Packet(packet), 'messageId'))
  }

  async incomingGetPacket (client: ClientRef, packet: MqttPacket): Promise<MqttPacket> {
    const row = await sessions.incomingPacket(this.#pool, client.id, packet.messageId)
    if (row === undefined) throw new Error('no such packet')
    return withMessageId(new Packet(fromRow(row)), row.message_id)
  }

  async incomingDelPacket (client: ClientRef, packet: MqttPacket): Promise<void> {
    if (!await sessions.deleteIncoming(this.#pool, client.id, packet.messageId)) throw new Error('no such packet')
  }

  async cleanIncoming (client: ClientRef): Promise<void> {
    await sessions.deleteAllIncoming(this.#pool, client.id)
  }

  async putWill (client: ClientRef, packet: MqttPacket): Promise<void> {
    if (!this.#broker) throw new Error('setup() has not run')
    // the memory store stamps the caller's packet itself; aedes and the suite read it back from there
    packet.brokerId = this.#broker.id
    packet.clientId = client.id
    await sessions.storeWill(this.#pool, client.id, this.#broker.id, toColumns(packet))
  }

  async getWill (client: ClientRef): Promise<MqttPacket | undefined> {
    const row = await sessions.willOf(this.#pool, client.id)
    return row === undefined ? undefined : fromRow(row)
  }

  async delWill (client: ClientRef): Promise<MqttPacket | undefined> {
    return await this.#willDeletes.get(client.id, null)
  }

  /** The wills of clients held by brokers not in `brokers` (the live ones), i.e. of dead brokers. */
  streamWill (brokers: Record<string, unknown> = {}): Readable {
    const alive = Object.keys(brokers).filter(id => brokers[id])
    return streamOf(sessions.willsNotHeldBy(this.#pool, alive).then(rows => rows.map(fromRow)))
  }

  // Waits for this instance's own writes; the pool belongs to the caller and stays open.
  async destroy (): Promise<void> {
    if (this.#destroyed) throw new Error('destroyed called twice!')
    this.#destroyed = true
    await this.#enqueues.close()
    await Promise.all([this.#subscriptionWrites.idle(), this.#retainedWrites.idle(), this.#outgoingUpdates.idle()])
    if (this.#broadcast) await this.#broadcast.brokerUnsubscribe()
    this.#index.clear()
  }
}

function indexEntry (clientId: string, sub: Subscription): IndexedSubscription {
  return { clientId, topic: sub.topic, qos: sub.qos, rh: sub.rh, rap: sub.rap, nl: sub.nl }
}

// Queued PUBLISHes come back in aedes' Packet shape, as the memory store keeps them; a packet that
// replaced one (a PUBREL) comes back as it was given.
function queuedPacket (row: QueuedRow): MqttPacket {
  const fields = fromRow(row)
  return withMessageId(fields.cmd === 'publish' ? new Packet(fields) : fields, row.message_id)
}
