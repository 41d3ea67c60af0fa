// The SQL of aedes' session store (migrations/0002_mqtt_sessions.sql): subscriptions, the QoS
// queues to and from clients, retained messages and wills. Rows in, rows out: how an aedes packet
// becomes these columns and back is the adapter's (broker/pgPersistence.ts), and so is every rule
// about order and the in-memory subscription index.
import type { Pool } from '../db/pool.js'

/** Rows per round trip when replaying a client's queue, so a long queue streams with backpressure. */
const OUTGOING_PAGE = 200

const PACKET = 'packet, payload, payload_is_text'

/** A subscription as aedes hands it over (MQTT 5's options included, stored as given). */
export interface Subscription {
  topic: string
  qos: number
  rh?: number
  rap?: boolean
  nl?: boolean
  subscriptionIdentifier?: number
}

/** The columns a packet is stored in: every field but the payload as JSON, the payload as bytes. */
export interface PacketColumns {
  packet: string
  payload: Buffer | null
  payloadIsText: boolean
}

/** The same columns as they come back from pg (jsonb already parsed, bytea as a Buffer). */
export interface PacketRow {
  packet: Record<string, unknown>
  payload: Buffer | null
  payload_is_text: boolean
}

/** A packet queued for or from a client, with its message id once one was assigned. */
export interface QueuedRow extends PacketRow {
  id: number
  message_id: number | null
}

/** One PUBLISH queued for several clients: its payload travels once. */
export interface OutgoingPacket {
  clientIds: string[]
  brokerId: string | null
  brokerCounter: number | null
  columns: PacketColumns
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

// Subscriptions

/** Every subscription anything can be queued for (QoS > 0), for the broker's in-memory index. */
export async function matchableSubscriptions (pool: Pool): Promise<Array<{ clientId: string, sub: Subscription }>> {
  const { rows } = await pool.query<SubscriptionRow>(
    'select client_id, topic, qos, rh, rap, nl from mqtt_subscriptions where qos > 0')
  return rows.map(row => ({ clientId: row.client_id, sub: toSubscription(row) }))
}

/** The subscriptions of each client, in the order they were first made; absent: none. */
export async function subscriptionsOf (pool: Pool, clientIds: string[]): Promise<Map<string, Subscription[]>> {
  const { rows } = await pool.query<SubscriptionRow>({
    name: 'herald_mqtt_subscriptions_of',
    text: `select client_id, topic, qos, rh, rap, nl, subscription_identifier
           from mqtt_subscriptions where client_id = any($1::text[]) order by id`,
    values: [clientIds]
  })
  const byClient = new Map<string, Subscription[]>()
  for (const row of rows) {
    const list = byClient.get(row.client_id)
    if (list) list.push(toSubscription(row))
    else byClient.set(row.client_id, [toSubscription(row)])
  }
  return byClient
}

/** Adds or updates subscriptions; each topic at most once in `subs`, new ones kept in `subs` order. */
export async function upsertSubscriptions (pool: Pool, clientId: string, subs: Subscription[]): Promise<void> {
  await pool.query({
    name: 'herald_mqtt_upsert_subscriptions',
    text: `insert into mqtt_subscriptions (client_id, topic, qos, rh, rap, nl, subscription_identifier)
     select $1, s.topic, s.qos, s.rh, s.rap, s.nl, s.subscription_identifier
     from unnest($2::text[], $3::smallint[], $4::smallint[], $5::boolean[], $6::boolean[], $7::integer[])
       with ordinality as s (topic, qos, rh, rap, nl, subscription_identifier, ord)
     order by s.ord
     on conflict (client_id, topic) do update
     set qos = excluded.qos, rh = excluded.rh, rap = excluded.rap, nl = excluded.nl,
         subscription_identifier = excluded.subscription_identifier`,
    values: [clientId, subs.map(s => s.topic), subs.map(s => s.qos), subs.map(s => s.rh ?? null),
      subs.map(s => s.rap ?? null), subs.map(s => s.nl ?? null), subs.map(s => s.subscriptionIdentifier ?? null)]
  })
}

/** Deletes a client's subscriptions to `topics` (all of them: 'all'); returns the topics it had. */
export async function deleteSubscriptions (pool: Pool, clientId: string, topics: string[] | 'all'): Promise<string[]> {
  const { rows } = topics === 'all'
    ? await pool.query<{ topic: string }>({
      // every clean connect
      name: 'herald_mqtt_clean_subscriptions',
      text: 'delete from mqtt_subscriptions where client_id = $1 returning topic',
      values: [clientId]
    })
    : await pool.query<{ topic: string }>(
      'delete from mqtt_subscriptions where client_id = $1 and topic = any($2::text[]) returning topic',
      [clientId, topics])
  return rows.map(row => row.topic)
}

export async function countSubscriptions (pool: Pool): Promise<{ subsCount: number, clientsCount: number }> {
  const { rows: [counts] } = await pool.query<{ subsCount: number, clientsCount: number }>(
    `select (count(*) filter (where qos > 0))::int as "subsCount", count(distinct client_id)::int as "clientsCount"
     from mqtt_subscriptions`)
  return counts
}

/** Clients subscribed to exactly this filter, oldest subscription first. */
export async function subscribersOf (pool: Pool, topic: string): Promise<string[]> {
  const { rows } = await pool.query<{ client_id: string }>(
    'select client_id from mqtt_subscriptions where topic = $1 order by id', [topic])
  return rows.map(row => row.client_id)
}

// Retained messages

export async function storeRetained (pool: Pool, topic: string, c: PacketColumns): Promise<void> {
  await pool.query(
    `insert into mqtt_retained (topic, ${PACKET}) values ($1, $2, $3, $4)
     on conflict (topic) do update
     set packet = excluded.packet, payload = excluded.payload, payload_is_text = excluded.payload_is_text`,
    [topic, c.packet, c.payload, c.payloadIsText])
}

export async function deleteRetained (pool: Pool, topic: string): Promise<void> {
  await pool.query('delete from mqtt_retained where topic = $1', [topic])
}

/** Retained messages whose topic starts with `prefix` (through the primary key), by topic. */
export async function retainedUnder (pool: Pool, prefix: string): Promise<Array<PacketRow & { topic: string }>> {
  // every SUBSCRIBE asks (a device subscribes on each connect)
  const { rows } = await pool.query<PacketRow & { topic: string }>({
    name: 'herald_mqtt_retained_under',
    text: `select topic, ${PACKET} from mqtt_retained where topic ^@ $1 order by topic`,
    values: [prefix]
  })
  return rows
}

// Packets queued for clients

/** Queues each packet for its clients, in `packets` order and, within one, in `clientIds` order. */
export async function enqueueOutgoing (pool: Pool, packets: OutgoingPacket[]): Promise<void> {
  // one row per (client, packet) pair, numbered so the join keeps that order
  const clientIds: string[] = []
  const packetNumbers: number[] = []
  packets.forEach((enqueued, i) => {
    for (const clientId of enqueued.clientIds) {
      clientIds.push(clientId)
      packetNumbers.push(i + 1)
    }
  })
  if (clientIds.length === 0) return
  await pool.query(
    `insert into mqtt_outgoing (client_id, broker_id, broker_counter, ${PACKET})
     select r.client_id, p.broker_id, p.broker_counter, p.packet::jsonb, p.payload, p.payload_is_text
     from unnest($1::text[], $2::bigint[]) with ordinality as r (client_id, packet_no, ord)
     join unnest($3::text[], $4::bigint[], $5::text[], $6::bytea[], $7::boolean[])
       with ordinality as p (broker_id, broker_counter, packet, payload, payload_is_text, packet_no)
       using (packet_no)
     order by r.ord`,
    [clientIds, packetNumbers, packets.map(e => e.brokerId), packets.map(e => e.brokerCounter),
      packets.map(e => e.columns.packet), packets.map(e => e.columns.payload),
      packets.map(e => e.columns.payloadIsText)])
}

/**
 * The first queued packet, in order, that is this one (same broker and counter) gets its message
 * id; otherwise the first from another broker with the same message id (a PUBREL, or a packet
 * queued before a restart) is replaced in place by `columns`. An unassigned message id matches
 * nothing. False: no such packet.
 */
export async function assignOutgoingMessageId (pool: Pool, clientId: string, packet: {
  brokerId: string | null, brokerCounter: number | null, messageId: number | null, columns: PacketColumns
}): Promise<boolean> {
  const c = packet.columns
  const { rowCount } = await pool.query(
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
    [clientId, packet.brokerId, packet.brokerCounter, packet.messageId, c.packet, c.payload, c.payloadIsText])
  return rowCount !== 0
}

/** Deletes and returns the first packet queued for the client with this message id. */
export async function takeOutgoing (pool: Pool, clientId: string, messageId: number): Promise<QueuedRow | undefined> {
  const { rows } = await pool.query<QueuedRow>(
    `delete from mqtt_outgoing
     where id = (select id from mqtt_outgoing where client_id = $1 and message_id = $2 order by id limit 1)
     returning id, message_id, ${PACKET}`, [clientId, messageId])
  return rows[0]
}

/** The newest packet queued for the client now (null: none): where a replay stops. */
export async function lastOutgoingId (pool: Pool, clientId: string): Promise<number | null> {
  // every connect replays the queue from here
  const { rows } = await pool.query<{ last: number | null }>({
    name: 'herald_mqtt_last_outgoing',
    text: 'select max(id) as last from mqtt_outgoing where client_id = $1',
    values: [clientId]
  })
  return rows[0].last
}

/** The client's queue up to `uptoId`, in order, read a page at a time as the consumer asks. */
export async function * outgoingUpTo (pool: Pool, clientId: string, uptoId: number): AsyncGenerator<QueuedRow> {
  let after = 0
  for (;;) {
    const { rows } = await pool.query<QueuedRow>({
      name: 'herald_mqtt_outgoing_page',
      text: `select id, message_id, ${PACKET} from mqtt_outgoing
             where client_id = $1 and id > $2 and id <= $3 order by id limit ${OUTGOING_PAGE}`,
      values: [clientId, after, uptoId]
    })
    yield * rows
    if (rows.length < OUTGOING_PAGE) return
    after = rows[rows.length - 1].id
  }
}

// QoS 2 packets received from clients

export async function storeIncoming (pool: Pool, clientId: string, messageId: number | undefined,
  c: PacketColumns): Promise<void> {
  await pool.query(
    `insert into mqtt_incoming (client_id, message_id, ${PACKET}) values ($1, $2, $3, $4, $5)
     on conflict (client_id, message_id) do update
     set packet = excluded.packet, payload = excluded.payload, payload_is_text = excluded.payload_is_text`,
    [clientId, messageId, c.packet, c.payload, c.payloadIsText])
}

export async function incomingPacket (pool: Pool, clientId: string, messageId: number | undefined):
Promise<PacketRow & { message_id: number } | undefined> {
  const { rows } = await pool.query<PacketRow & { message_id: number }>(
    `select message_id, ${PACKET} from mqtt_incoming where client_id = $1 and message_id = $2`, [clientId, messageId])
  return rows[0]
}

/** False: there was no such packet. */
export async function deleteIncoming (pool: Pool, clientId: string, messageId: number | undefined): Promise<boolean> {
  const { rowCount } = await pool.query(
    'delete from mqtt_incoming where client_id = $1 and message_id = $2', [clientId, messageId])
  return rowCount !== 0
}

export async function deleteAllIncoming (pool: Pool, clientId: string): Promise<void> {
  // every clean connect and disconnect
  await pool.query({
    name: 'herald_mqtt_clean_incoming',
    text: 'delete from mqtt_incoming where client_id = $1',
    values: [clientId]
  })
}

// Wills

export async function storeWill (pool: Pool, clientId: string, brokerId: string, c: PacketColumns): Promise<void> {
  await pool.query(
    `insert into mqtt_wills (client_id, broker_id, ${PACKET}) values ($1, $2, $3, $4, $5)
     on conflict (client_id) do update set broker_id = excluded.broker_id,
       packet = excluded.packet, payload = excluded.payload, payload_is_text = excluded.payload_is_text`,
    [clientId, brokerId, c.packet, c.payload, c.payloadIsText])
}

export async function willOf (pool: Pool, clientId: string): Promise<PacketRow | undefined> {
  const { rows } = await pool.query<PacketRow>(`select ${PACKET} from mqtt_wills where client_id = $1`, [clientId])
  return rows[0]
}

/** Deletes the wills of these clients and returns them, by client id. */
export async function deleteWills (pool: Pool, clientIds: string[]): Promise<Map<string, PacketRow>> {
  // every connect and disconnect
  const { rows } = await pool.query<PacketRow & { client_id: string }>({
    name: 'herald_mqtt_delete_wills',
    text: `delete from mqtt_wills where client_id = any($1::text[]) returning client_id, ${PACKET}`,
    values: [clientIds]
  })
  return new Map(rows.map(row => [row.client_id, row]))
}

/** The wills held by brokers other than these (the live ones), by client id. */
export async function willsNotHeldBy (pool: Pool, brokerIds: string[]): Promise<PacketRow[]> {
  const { rows } = await pool.query<PacketRow>(
    `select ${PACKET} from mqtt_wills where broker_id <> all($1::text[]) order by client_id`, [brokerIds])
  return rows
}
