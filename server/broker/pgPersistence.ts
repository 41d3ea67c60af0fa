// aedes' session store in Postgres (aedes-persistence 11, promise interface). Semantics follow the
// in-memory store, node_modules/aedes-persistence/asyncPersistence.js, which the conformance
// suite (test/persistence.conformance.test.ts) checks both against.
import { Readable } from 'node:stream'
import type { Client } from 'aedes'
import { KeyedBatcher, KeyedChain, OrderedBatcher } from '../db/batching.js'
import type { Pool } from '../db/pool.js'
import {
  Packet, fromRow, literalPrefix, newSubscriptionBroadcast, newSubscriptionIndex,
  newTopicMatcher, payloadLength, streamOf, toColumns, withMessageId,
  type BrokerRef, type ClientRef, type IndexedSubscription, type MqttPacket, type PacketColumns, type PacketRow,
  type Subscription, type SubscriptionBroadcast
} from './pgPersistenceSupport.js'

export type { BrokerRef, ClientRef, Subscription } from './pgPersistenceSupport.js'

// rows per round trip when replaying a client's queue, so a long queue streams with backpressure
const OUTGOING_PAGE = 200

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

interface SubscriptionRow {
  client_id: string
  topic: string
  qos: number
  rh: number | null
  rap: boolean | null
  nl: boolean | null
  subscription_identifier: number | null
}

interface QueuedRow extends PacketRow {
  id: number
  message_id: number | null
}

interface Enqueued {
  clientIds: string[]
  brokerId: string | null
  brokerCounter: number | null
  columns: PacketColumns
}

const PACKET = 'packet, payload, payload_is_text'

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
  readonly #enqueues = new OrderedBatcher<Enqueued>(batch => this.#writeOutgoing(batch))
  // every connect asks for both (a persistent session's subscriptions, any previous will)
  readonly #sessionReads = new KeyedBatcher<null, Subscription[]>(
    requests => this.#readSubscriptions(requests.map(([id]) => id)), [])

  readonly #willDeletes = new KeyedBatcher<null, MqttPacket | undefined>(
    requests => this.#deleteWills(requests.map(([id]) => id)), undefined, { repeat: 'once' })

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
    const { rows } = await this.#pool.query<SubscriptionRow>(
      'select client_id, topic, qos, rh, rap, nl from mqtt_subscriptions where qos > 0')
    for (const row of rows) this.#index.add(row.topic, indexEntry(row.client_id, toSubscription(row)))
  }

  async storeRetained (packet: MqttPacket): Promise<void> {
    const topic = String(packet.topic)
    // encoded now: the caller may change the packet once we return, as the memory store copies it
    const c = payloadLength(packet) === 0 ? undefined : toColumns(packet)
    await this.#retainedWrites.run(topic, async () => {
      if (!c) {
        await this.#pool.query('delete from mqtt_retained where topic = $1', [topic])
        return
      }
      await this.#pool.query(
        `insert into mqtt_retained (topic, ${PACKET}) values ($1, $2, $3, $4)
         on conflict (topic) do update
         set packet = excluded.packet, payload = excluded.payload, payload_is_text = excluded.payload_is_text`,
        [topic, c.packet, c.payload, c.payloadIsText])
    })
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
      const { rows } = await this.#pool.query<PacketRow & { topic: string }>(
        `select topic, ${PACKET} from mqtt_retained where topic ^@ $1 order by topic`, [literalPrefix(pattern)])
      return rows.filter(row => matcher.test(row.topic)).map(fromRow)
    })
    return streamOf(Promise.all(perPattern).then(lists => lists.flat()))
  }

  async addSubscriptions (client: ClientRef, subs: Subscription[]): Promise<void> {
    // a topic repeated in one SUBSCRIBE keeps its first position and its last options, like the
    // memory store's Map; one upsert statement may not touch a row twice anyway
    const latest = [...new Map(subs.map(sub => [sub.topic, sub])).values()]
    await this.#subscriptionWrites.run(client.id, async () => {
      if (latest.length > 0) {
        await this.#pool.query(
          `insert into mqtt_subscriptions (client_id, topic, qos, rh, rap, nl, subscription_identifier)
           select $1, s.topic, s.qos, s.rh, s.rap, s.nl, s.subscription_identifier
           from unnest($2::text[], $3::smallint[], $4::smallint[], $5::boolean[], $6::boolean[], $7::integer[])
             with ordinality as s (topic, qos, rh, rap, nl, subscription_identifier, ord)
           order by s.ord
           on conflict (client_id, topic) do update
           set qos = excluded.qos, rh = excluded.rh, rap = excluded.rap, nl = excluded.nl,
               subscription_identifier = excluded.subscription_identifier`,
          [client.id, latest.map(s => s.topic), latest.map(s => s.qos), latest.map(s => s.rh ?? null),
            latest.map(s => s.rap ?? null), latest.map(s => s.nl ?? null),
            latest.map(s => s.subscriptionIdentifier ?? null)])
      }
      for (const sub of latest) {
        // QoS 0 subscriptions are kept for the session but never matched: nothing is queued for them
        if (sub.qos > 0) this.#index.add(sub.topic, indexEntry(client.id, sub))
        else this.#index.remove(sub.topic, { clientId: client.id, topic: sub.topic })
      }
      if (this.#broadcast && subs.length > 0) await this.#broadcast.addedSubscriptions(client, subs)
    })
  }

  async removeSubscriptions (client: ClientRef, topics: string[]): Promise<void> {
    await this.#subscriptionWrites.run(client.id, () => this.#deleteSubscriptions(client,
      'delete from mqtt_subscriptions where client_id = $1 and topic = any($2::text[]) returning topic', [topics]))
  }

  async cleanSubscriptions (client: ClientRef): Promise<void> {
    await this.#subscriptionWrites.run(client.id, () => this.#deleteSubscriptions(client,
      'delete from mqtt_subscriptions where client_id = $1 returning topic', []))
  }

  async #deleteSubscriptions (client: ClientRef, sql: string, params: unknown[]): Promise<void> {
    const { rows } = await this.#pool.query<{ topic: string }>(sql, [client.id, ...params])
    const topics = rows.map(row => row.topic)
    for (const topic of topics) this.#index.remove(topic, { clientId: client.id, topic })
    if (this.#broadcast && topics.length > 0) await this.#broadcast.removedSubscriptions(client, topics)
  }

  async subscriptionsByClient (client: ClientRef): Promise<Subscription[]> {
    return await this.#sessionReads.get(client.id, null)
  }

  async #readSubscriptions (clientIds: string[]): Promise<Map<string, Subscription[]>> {
    const { rows } = await this.#pool.query<SubscriptionRow>(
      `select client_id, topic, qos, rh, rap, nl, subscription_identifier
       from mqtt_subscriptions where client_id = any($1::text[]) order by id`, [clientIds])
    const byClient = new Map<string, Subscription[]>()
    for (const row of rows) {
      const list = byClient.get(row.client_id)
      if (list) list.push(toSubscription(row))
      else byClient.set(row.client_id, [toSubscription(row)])
    }
    return byClient
  }

  async subscriptionsByTopic (topic: string): Promise<IndexedSubscription[]> {
    return this.#index.match(topic)
  }

  async countOffline (): Promise<{ subsCount: number, clientsCount: number }> {
    const { rows: [counts] } = await this.#pool.query<{ subsCount: number, clientsCount: number }>(
      `select (count(*) filter (where qos > 0))::int as "subsCount", count(distinct client_id)::int as "clientsCount"
       from mqtt_subscriptions`)
    return counts
  }

  getClientList (topic: string): Readable {
    return streamOf(this.#pool.query<{ client_id: string }>(
      'select client_id from mqtt_subscriptions where topic = $1 order by id', [topic])
      .then(({ rows }) => rows.map(row => row.client_id)))
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

  // The payload travels once per packet; the join fans it out to one row per client.
  async #writeOutgoing (batch: Enqueued[]): Promise<void> {
    const clientIds: string[] = []
    const packetNumbers: number[] = []
    batch.forEach((enqueued, i) => {
      for (const clientId of enqueued.clientIds) {
        clientIds.push(clientId)
        packetNumbers.push(i + 1)
      }
    })
    if (clientIds.length === 0) return
    await this.#pool.query(
      `insert into mqtt_outgoing (client_id, broker_id, broker_counter, ${PACKET})
       select r.client_id, p.broker_id, p.broker_counter, p.packet::jsonb, p.payload, p.payload_is_text
       from unnest($1::text[], $2::bigint[]) with ordinality as r (client_id, packet_no, ord)
       join unnest($3::text[], $4::bigint[], $5::text[], $6::bytea[], $7::boolean[])
         with ordinality as p (broker_id, broker_counter, packet, payload, payload_is_text, packet_no)
         using (packet_no)
       order by r.ord`,
      [clientIds, packetNumbers, batch.map(e => e.brokerId), batch.map(e => e.brokerCounter),
        batch.map(e => e.columns.packet), batch.map(e => e.columns.payload), batch.map(e => e.columns.payloadIsText)])
  }

  // The first queued packet, in order, that is this one (same broker and counter) gets its message
  // id; otherwise the first from another broker with the same message id (a PUBREL, or a packet
  // queued before a restart) is replaced in place. An unassigned message id matches nothing.
  async outgoingUpdate (client: ClientRef, packet: MqttPacket): Promise<void> {
    const c = toColumns(packet, 'messageId')
    const { rowCount } = await this.#outgoingUpdates.run(client.id, () => this.#pool.query(
      `with target as (
         select id, broker_id is not distinct from $2 as same_packet
         from mqtt_outgoing
         where client_id = $1
           and ((broker_id is not distinct from $2 and broker_counter is not distinct from $3)
             or (broker_id is distinct from $2 and message_id = $4))
         order by id
         limit 1
       )
       update mqtt_outgoing o set
         message_id = $4,
         broker_id = case when t.same_packet then o.broker_id else $2 end,
         broker_counter = case when t.same_packet then o.broker_counter else $3 end,
         packet = case when t.same_packet then o.packet else $5::jsonb end,
         payload = case when t.same_packet then o.payload else $6 end,
         payload_is_text = case when t.same_packet then o.payload_is_text else $7 end
       from target t
       where o.id = t.id`,
      [client.id, packet.brokerId ?? null, packet.brokerCounter ?? null, packet.messageId ?? null,
        c.packet, c.payload, c.payloadIsText]))
    if (rowCount === 0) throw new Error('no such packet')
  }

  async outgoingClearMessageId (client: Client, packet: MqttPacket): Promise<MqttPacket | object | undefined> {
    const messageId = packet?.messageId
    if (typeof messageId !== 'number') return undefined
    const claimed = this.#outgoingAcks?.(client, messageId)
    if (claimed !== undefined) return claimed
    const { rows } = await this.#pool.query<QueuedRow>(
      `delete from mqtt_outgoing
       where id = (select id from mqtt_outgoing where client_id = $1 and message_id = $2 order by id limit 1)
       returning id, message_id, ${PACKET}`, [client.id, messageId])
    return rows.length > 0 ? queuedPacket(rows[0]) : undefined
  }

  outgoingStream (client: ClientRef): Readable {
    // bounded now, like the memory store's copy of the queue: packets queued during the replay are
    // delivered live and must not come out of this stream as well
    const last = this.#pool.query<{ last: number | null }>(
      'select max(id) as last from mqtt_outgoing where client_id = $1', [client.id])
      .then(({ rows }) => rows[0].last)
    last.catch(() => {}) // surfaces as the stream's error once read
    const pool = this.#pool
    return Readable.from((async function * () {
      const bound = await last
      if (bound === null) return
      let after = 0
      for (;;) {
        const { rows } = await pool.query<QueuedRow>(
          `select id, message_id, ${PACKET} from mqtt_outgoing
           where client_id = $1 and id > $2 and id <= $3 order by id limit ${OUTGOING_PAGE}`,
          [client.id, after, bound])
        for (const row of rows) yield queuedPacket(row)
        if (rows.length < OUTGOING_PAGE) return
        after = rows[rows.length - 1].id
      }
    })())
  }

  async incomingStorePacket (client: ClientRef, packet: MqttPacket): Promise<void> {
    const c = toColumns(new Packet(packet), 'messageId')
    await this.#pool.query(
      `insert into mqtt_incoming (client_id, message_id, ${PACKET}) values ($1, $2, $3, $4, $5)
       on conflict (client_id, message_id) do update
       set packet = excluded.packet, payload = excluded.payload, payload_is_text = excluded.payload_is_text`,
      [client.id, packet.messageId, c.packet, c.payload, c.payloadIsText])
  }

  async incomingGetPacket (client: ClientRef, packet: MqttPacket): Promise<MqttPacket> {
    const { rows } = await this.#pool.query<QueuedRow>(
      `select message_id, ${PACKET} from mqtt_incoming where client_id = $1 and message_id = $2`,
      [client.id, packet.messageId])
    if (rows.length === 0) throw new Error('no such packet')
    return withMessageId(new Packet(fromRow(rows[0])), rows[0].message_id)
  }

  async incomingDelPacket (client: ClientRef, packet: MqttPacket): Promise<void> {
    const { rowCount } = await this.#pool.query(
      'delete from mqtt_incoming where client_id = $1 and message_id = $2', [client.id, packet.messageId])
    if (rowCount === 0) throw new Error('no such packet')
  }

  async cleanIncoming (client: ClientRef): Promise<void> {
    await this.#pool.query('delete from mqtt_incoming where client_id = $1', [client.id])
  }

  async putWill (client: ClientRef, packet: MqttPacket): Promise<void> {
    if (!this.#broker) throw new Error('setup() has not run')
    // the memory store stamps the caller's packet itself; aedes and the suite read it back from there
    packet.brokerId = this.#broker.id
    packet.clientId = client.id
    const c = toColumns(packet)
    await this.#pool.query(
      `insert into mqtt_wills (client_id, broker_id, ${PACKET}) values ($1, $2, $3, $4, $5)
       on conflict (client_id) do update set broker_id = excluded.broker_id,
         packet = excluded.packet, payload = excluded.payload, payload_is_text = excluded.payload_is_text`,
      [client.id, packet.brokerId, c.packet, c.payload, c.payloadIsText])
  }

  async getWill (client: ClientRef): Promise<MqttPacket | undefined> {
    const { rows } = await this.#pool.query<PacketRow>(
      `select ${PACKET} from mqtt_wills where client_id = $1`, [client.id])
    return rows.length > 0 ? fromRow(rows[0]) : undefined
  }

  async delWill (client: ClientRef): Promise<MqttPacket | undefined> {
    return await this.#willDeletes.get(client.id, null)
  }

  async #deleteWills (clientIds: string[]): Promise<Map<string, MqttPacket | undefined>> {
    const { rows } = await this.#pool.query<PacketRow & { client_id: string }>(
      `delete from mqtt_wills where client_id = any($1::text[]) returning client_id, ${PACKET}`, [clientIds])
    return new Map(rows.map(row => [row.client_id, fromRow(row)]))
  }

  /** The wills of clients held by brokers not in `brokers` (the live ones), i.e. of dead brokers. */
  streamWill (brokers: Record<string, unknown> = {}): Readable {
    const alive = Object.keys(brokers).filter(id => brokers[id])
    return streamOf(this.#pool.query<PacketRow>(
      `select ${PACKET} from mqtt_wills where broker_id <> all($1::text[]) order by client_id`, [alive])
      .then(({ rows }) => rows.map(fromRow)))
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

function toSubscription (row: SubscriptionRow): Subscription {
  const sub: Subscription = {
    topic: row.topic,
    qos: row.qos,
    rh: row.rh ?? undefined,
    rap: row.rap ?? undefined,
    nl: row.nl ?? undefined
  }
  if (row.subscription_identifier != null) sub.subscriptionIdentifier = row.subscription_identifier
  return sub
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
