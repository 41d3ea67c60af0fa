import { inTransaction, type Pool, type PoolClient } from '../db/pool.js'
import { nodeChannel, sendSignals, type Signal } from './signals.js'

// Serialises accept transactions across every Herald process sharing the database, so that
// seq order (deliveries.seq, messages.seq) is commit order and devices get messages in the
// order they were accepted. Batching many messages per transaction keeps this cheap.
export const ACCEPT_LOCK = 0x4865_7262

/** How long a repeated Idempotency-Key returns the first answer. */
export const IDEMPOTENCY_WINDOW_HOURS = 24

export type Target =
  | { user: string }
  | { users: string[] }
  | { topic: string }

export interface NewMessage {
  id: string
  target: Target
  title: string | null
  body: string | null
  data: Record<string, unknown> | null
  priority: 'normal' | 'high'
  collapseKey: string | null
  ttl: number
  acceptedAt: Date
  expiresAt: Date
  /** the JSON devices receive */
  payload: Buffer
  apiKeyId: string | null
  /** for topic messages: devices subscribed to the topic now, resolved by the broker */
  topicSubscribers?: string[]
}

/** What one API request hands in: its messages commit together, in one transaction, or not at all. */
export interface AcceptRequest {
  messages: NewMessage[]
  apiKeyId: string | null
  idempotency?: { key: string, requestHash: string }
  /** the answer to store for a repeat of this request's Idempotency-Key */
  response: (accepted: Array<{ id: string, recipients: number }>) => unknown
}

export interface AcceptedMessage {
  id: string
  recipients: number
  deliveries: NewDelivery[]
  replaced: Array<{ messageId: string, deviceId: string }>
}

/** One queue entry created for a device. */
export interface NewDelivery {
  seq: number
  messageId: string
  deviceId: string
  userId: string
  /**
   * For a device connected to this process while other processes run: the seq of its previous
   * undelivered row (0 for none). Its channel takes this one from memory only if it has that one
   * already; otherwise an earlier row another process committed is not read yet, and the channel
   * reads its queue instead, keeping accept order. Undefined when this process runs alone.
   */
  after?: number
}

export type AcceptOutcome =
  | { kind: 'accepted', messages: AcceptedMessage[], response: unknown }
  | { kind: 'replay', status: number, response: unknown }
  | { kind: 'idempotency-conflict' }

interface Target_ {
  n: number
  deviceId: string
  userId: string
  /** the node holding the device's connection when the accept read it */
  node: string | null
  /** other processes run on this database (a heartbeat in the last minute) */
  clustered: boolean
}

const key = (apiKeyId: string | null, idempotencyKey: string): string => `${apiKeyId}\u0000${idempotencyKey}`

/**
 * Commits a batch of requests with their messages and deliveries in one transaction and
 * returns one outcome per request, in order. Nothing is visible (or sent) before the commit.
 *
 * The batch costs a fixed number of statements whatever its size: begin with the lock (one
 * round trip), idempotency look-up, target resolution, one insert of messages, one of
 * deliveries, one collapse update, one insert of idempotency keys, commit. Messages keep their
 * batch order in seq. (One statement doing all of it, with CTEs, saved no time under load and
 * cost Postgres 15% more CPU: the accept's time under load is the busy event loop's, not the
 * round trips'.)
 */
export async function acceptBatch (pool: Pool, requests: AcceptRequest[], nodeId: string): Promise<AcceptOutcome[]> {
  return inTransaction(pool, async client => {
    const outcomes: Array<AcceptOutcome | undefined> = await checkIdempotency(client, requests)
    const freshRequests = requests.map((r, n) => ({ r, n })).filter(({ n }) => outcomes[n] === undefined)
    if (freshRequests.length === 0) return outcomes as AcceptOutcome[]
    // every message of the fresh requests, numbered in batch order
    const fresh = freshRequests.flatMap(({ r }) => r.messages).map((m, n) => ({ m, n }))

    const targets = await resolveTargets(client, fresh, nodeId)
    const byMessage = new Map<number, Target_[]>()
    for (const t of targets) {
      const list = byMessage.get(t.n)
      if (list) list.push(t)
      else byMessage.set(t.n, [t])
    }
    await insertMessages(client, fresh.map(({ m, n }) => ({ m, recipients: byMessage.get(n)?.length ?? 0 })))
    const deliveries = await insertDeliveries(client, fresh.map(({ m, n }) => ({ m, targets: byMessage.get(n) ?? [] })))
    const replaced = await collapse(client, fresh.map(f => f.m), deliveries)
    await signalOtherNodes(client, nodeId, fresh.map(f => f.m), targets, deliveries)
    await markPrevious(client, nodeId, fresh.map(f => f.m), targets, deliveries)

    const deliveriesOf = new Map<string, NewDelivery[]>()
    for (const d of deliveries) {
      const list = deliveriesOf.get(d.messageId)
      if (list) list.push(d)
      else deliveriesOf.set(d.messageId, [d])
    }
    const replacedBy = new Map<string, Array<{ messageId: string, deviceId: string }>>()
    for (const r of replaced) {
      const list = replacedBy.get(r.byMessageId)
      const entry = { messageId: r.messageId, deviceId: r.deviceId }
      if (list) list.push(entry)
      else replacedBy.set(r.byMessageId, [entry])
    }
    for (const { r, n } of freshRequests) {
      const messages = r.messages.map(m => {
        const own = deliveriesOf.get(m.id) ?? []
        return { id: m.id, recipients: own.length, deliveries: own, replaced: replacedBy.get(m.id) ?? [] }
      })
      const response = r.response(messages.map(({ id, recipients }) => ({ id, recipients })))
      outcomes[n] = { kind: 'accepted', messages, response }
    }

    // a repeat of an Idempotency-Key inside this batch answers like the first
    const firstOfKey = new Map<string, { n: number, hash: string }>()
    for (const { r, n } of freshRequests) {
      if (r.idempotency && r.apiKeyId) {
        firstOfKey.set(key(r.apiKeyId, r.idempotency.key), { n, hash: r.idempotency.requestHash })
      }
    }
    requests.forEach((r, n) => {
      const outcome = outcomes[n]
      if (outcome?.kind !== 'replay' || !r.idempotency || (outcome.response as unknown) !== PENDING_IN_BATCH) return
      const first = firstOfKey.get(key(r.apiKeyId, r.idempotency.key))!
      const accepted = outcomes[first.n] as AcceptOutcome & { kind: 'accepted' }
      outcomes[n] = first.hash === r.idempotency.requestHash
        ? { kind: 'replay', status: 202, response: accepted.response }
        : { kind: 'idempotency-conflict' }
    })
    const keyed = freshRequests.filter(({ r }) => r.idempotency && r.apiKeyId)
    if (keyed.length > 0) {
      await client.query({
        name: 'herald_accept_store_idempotency_keys',
        text: `insert into idempotency_keys (api_key_id, key, request_hash, status, response)
               select k, i, h, 202, r from unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[]) as t(k, i, h, r)
               on conflict (api_key_id, key) do update
                 set request_hash = excluded.request_hash, status = excluded.status, response = excluded.response,
                     created_at = now()`,
        values: [keyed.map(({ r }) => r.apiKeyId), keyed.map(({ r }) => r.idempotency!.key),
          keyed.map(({ r }) => r.idempotency!.requestHash),
          keyed.map(({ n }) => JSON.stringify((outcomes[n] as AcceptOutcome & { kind: 'accepted' }).response))]
      })
    }
    return outcomes as AcceptOutcome[]
  }, `select pg_advisory_xact_lock(${ACCEPT_LOCK})`)
}

/** Marks a later request of the batch that repeats a key of an earlier one, to be answered after the insert. */
const PENDING_IN_BATCH = Symbol('pending in batch')

async function checkIdempotency (
  client: PoolClient,
  requests: AcceptRequest[]
): Promise<Array<AcceptOutcome | undefined>> {
  const outcomes: Array<AcceptOutcome | undefined> = requests.map(() => undefined)
  const keyed = requests.map((r, n) => ({ r, n })).filter(({ r }) => r.idempotency && r.apiKeyId)
  if (keyed.length === 0) return outcomes
  const apiKeyIds = keyed.map(({ r }) => r.apiKeyId)
  const keys = keyed.map(({ r }) => r.idempotency!.key)
  // a key past its window may still be stored until the sweep: it does not count, and the
  // insert after the accept takes it over
  type StoredKey = { api_key_id: string, key: string, request_hash: string, status: number, response: unknown }
  const { rows } = await client.query<StoredKey>({
    name: 'herald_accept_read_idempotency_keys',
    text: `select i.api_key_id, i.key, i.request_hash, i.status, i.response
           from idempotency_keys i join unnest($1::uuid[], $2::text[]) as t(k, i) on i.api_key_id = t.k and i.key = t.i
           where i.created_at > now() - make_interval(hours => $3)`,
    values: [apiKeyIds, keys, IDEMPOTENCY_WINDOW_HOURS]
  })
  const stored = new Map(rows.map(r => [key(r.api_key_id, r.key), r]))
  const seenInBatch = new Set<string>()
  for (const { r, n } of keyed) {
    const k = key(r.apiKeyId, r.idempotency!.key)
    const row = stored.get(k)
    if (row) {
      outcomes[n] = row.request_hash === r.idempotency!.requestHash
        ? { kind: 'replay', status: row.status, response: row.response }
        : { kind: 'idempotency-conflict' }
    } else if (seenInBatch.has(k)) {
      outcomes[n] = { kind: 'replay', status: 202, response: PENDING_IN_BATCH }
    } else {
      seenInBatch.add(k)
    }
  }
  return outcomes
}

/**
 * The devices each message goes to, in one query for the whole batch. ttl 0: only devices
 * online now; otherwise every persistent session, plus clean sessions online now.
 */
async function resolveTargets (client: PoolClient, fresh: Array<{ m: NewMessage, n: number }>,
  self: string): Promise<Target_[]> {
  const users: string[] = []
  const userN: number[] = []
  const userLive: boolean[] = []
  const subs: string[] = []
  const subN: number[] = []
  const subLive: boolean[] = []
  for (const { m, n } of fresh) {
    const live = m.ttl === 0
    if ('topic' in m.target) {
      for (const id of m.topicSubscribers ?? []) { subs.push(id); subN.push(n); subLive.push(live) }
    } else {
      for (const u of 'user' in m.target ? [m.target.user] : m.target.users) {
        users.push(u); userN.push(n); userLive.push(live)
      }
    }
  }
  const { rows } = await client.query<Target_>({
    name: 'herald_accept_resolve_targets',
    text: `select t.n, d.device_id as "deviceId", d.user_id as "userId", d.connected_node as node,
            ${OTHER_NODES_RUN} as clustered
       from unnest($1::text[], $2::int[], $3::bool[]) as t(user_id, n, live_only)
       join devices d on d.user_id = t.user_id
      where d.connected_node is not null or (d.persistent and not t.live_only)
     union all
     select t.n, d.device_id, d.user_id, d.connected_node, ${OTHER_NODES_RUN}
       from unnest($4::text[], $5::int[], $6::bool[]) as t(device_id, n, live_only)
       join devices d on d.device_id = t.device_id
      where d.connected_node is not null or (d.persistent and not t.live_only)
     order by 1, 3, 2`,
    values: [users, userN, userLive, subs, subN, subLive, self]
  })
  return rows
}

// Whether another process runs: not marked gone (a clean stop marks itself), and a heartbeat in
// the last minute (every 5 s while it runs; nodes register before they accept anything or take a
// device). Evaluated once per statement.
const OTHER_NODES_RUN = '(select exists (select 1 from nodes where id <> $7 and gone_at is null ' +
  "and heartbeat_at > now() - interval '60 seconds'))"

/**
 * Sets `after` on the deliveries for devices connected here (see NewDelivery), when other
 * processes run: one index probe per such device (deliveries_pending), none when alone.
 */
async function markPrevious (client: PoolClient, self: string, messages: NewMessage[], targets: Target_[],
  deliveries: NewDelivery[]): Promise<void> {
  if (!targets.some(t => t.clustered)) return
  const local = new Set(targets.filter(t => t.node === self).map(t => t.deviceId))
  const firstSeq = new Map<string, number>()
  for (const d of deliveries) if (local.has(d.deviceId) && !firstSeq.has(d.deviceId)) firstSeq.set(d.deviceId, d.seq)
  if (firstSeq.size === 0) return
  const { rows } = await client.query<{ deviceId: string, after: number }>({
    name: 'herald_accept_previous_pending',
    text: `select t.device_id as "deviceId", coalesce((
             select max(p.seq) from deliveries p
              where p.device_id = t.device_id and p.status in ('queued', 'sent') and p.expires_at > now()
                and p.seq < t.first_seq), 0) as after
           from unnest($1::text[], $2::bigint[]) as t(device_id, first_seq)`,
    values: [[...firstSeq.keys()], [...firstSeq.values()]]
  })
  const previous = new Map(rows.map(r => [r.deviceId, r.after]))
  // ttl-0 rows are never read from a queue: they are no one's predecessor
  const liveOnly = new Set(messages.filter(m => m.ttl === 0).map(m => m.id))
  for (const d of [...deliveries].sort((a, b) => a.seq - b.seq)) {
    const after = previous.get(d.deviceId)
    if (after === undefined) continue
    d.after = after
    if (!liveOnly.has(d.messageId)) previous.set(d.deviceId, d.seq)
  }
}

/**
 * Tells each other node holding a connection of a device this batch queued for that it has new
 * deliveries: one signal per node for the whole batch, sent when the transaction commits. A
 * device connected here is served in process (MessageService hands it the new rows); one with
 * no connection waits for its next connect. Alone, a process sends nothing.
 *
 * The node is the one the accept read. A device that connects elsewhere meanwhile is not missed:
 * its new node reads its queue only after every accept running at its claim has committed
 * (pendingForDevices' first page, under the accept lock).
 */
async function signalOtherNodes (client: PoolClient, self: string, messages: NewMessage[], targets: Target_[],
  deliveries: NewDelivery[]): Promise<void> {
  const nodeOf = new Map<string, string>()
  for (const t of targets) if (t.node !== null && t.node !== self) nodeOf.set(t.deviceId, t.node)
  if (nodeOf.size === 0) return
  const liveOnly = new Set(messages.filter(m => m.ttl === 0).map(m => m.id))
  const byNode = new Map<string, { devices: Set<string>, live: number[] }>()
  for (const d of deliveries) {
    const node = nodeOf.get(d.deviceId)
    if (node === undefined) continue
    let entry = byNode.get(node)
    if (!entry) byNode.set(node, entry = { devices: new Set(), live: [] })
    if (liveOnly.has(d.messageId)) entry.live.push(d.seq)
    else entry.devices.add(d.deviceId)
  }
  const signals: Array<{ channel: string, signal: Signal }> = []
  for (const [node, { devices, live }] of byNode) {
    signals.push({ channel: nodeChannel(node), signal: { kind: 'queued', devices: [...devices], live } })
  }
  await sendSignals(client, signals)
}

async function insertMessages (client: PoolClient, items: Array<{ m: NewMessage, recipients: number }>): Promise<void> {
  const col = <T>(f: (m: NewMessage, recipients: number) => T): T[] =>
    items.map(({ m, recipients }) => f(m, recipients))
  await client.query({
    name: 'herald_accept_insert_messages',
    text: `insert into messages (id, target_kind, target, topic, title, body, data, priority, collapse_key, ttl,
                           accepted_at, expires_at, payload, api_key_id, recipients)
     select * from unnest($1::uuid[], $2::text[], $3::jsonb[], $4::text[], $5::text[], $6::text[], $7::jsonb[],
                          $8::text[], $9::text[], $10::int[], $11::timestamptz[], $12::timestamptz[], $13::bytea[],
                          $14::uuid[], $15::int[])`,
    values: [col(m => m.id), col(m => 'user' in m.target ? 'user' : 'users' in m.target ? 'users' : 'topic'),
      col(m => JSON.stringify(m.target)), col(m => 'topic' in m.target ? m.target.topic : null), col(m => m.title),
      col(m => m.body), col(m => m.data === null ? null : JSON.stringify(m.data)), col(m => m.priority),
      col(m => m.collapseKey), col(m => m.ttl),
      col(m => m.acceptedAt), col(m => m.expiresAt), col(m => m.payload), col(m => m.apiKeyId), col((_m, r) => r)]
  })
}

async function insertDeliveries (
  client: PoolClient,
  items: Array<{ m: NewMessage, targets: Target_[] }>
): Promise<NewDelivery[]> {
  const messageIds: string[] = []
  const deviceIds: string[] = []
  const userIds: string[] = []
  const collapseKeys: Array<string | null> = []
  const expiresAt: Date[] = []
  const queuedAt: Date[] = []
  for (const { m, targets } of items) {
    for (const t of targets) {
      messageIds.push(m.id)
      deviceIds.push(t.deviceId)
      userIds.push(t.userId)
      collapseKeys.push(m.collapseKey)
      expiresAt.push(m.expiresAt)
      queuedAt.push(m.acceptedAt)
    }
  }
  if (messageIds.length === 0) return []
  const { rows } = await client.query<NewDelivery>({
    name: 'herald_accept_insert_deliveries',
    text: `insert into deliveries (message_id, device_id, user_id, status, collapse_key, expires_at, queued_at)
     select t.message_id, t.device_id, t.user_id, 'queued', t.collapse_key, t.expires_at, t.queued_at
     from unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[])
          with ordinality as t(message_id, device_id, user_id, collapse_key, expires_at, queued_at, n)
     order by t.n
     returning seq, message_id as "messageId", device_id as "deviceId", user_id as "userId"`,
    values: [messageIds, deviceIds, userIds, collapseKeys, expiresAt, queuedAt]
  })
  return rows
}

/**
 * A device holds at most one undelivered message per collapse key: for each (device, key) in
 * this batch, every older row still queued (never written to the device) is replaced by the
 * newest one. A row already written keeps its sent/delivered history: the device has, or may
 * have, shown it. Which one happens is decided by Postgres' row lock against the channel's
 * claim (claimForSending in store/deliveries.ts), so the record matches what the device got.
 */
async function collapse (
  client: PoolClient,
  messages: NewMessage[],
  deliveries: NewDelivery[]
): Promise<Array<{ messageId: string, deviceId: string, byMessageId: string }>> {
  const keyOf = new Map(messages.filter(m => m.collapseKey !== null).map(m => [m.id, m.collapseKey!]))
  if (keyOf.size === 0) return []
  const newest = new Map<string, NewDelivery & { collapseKey: string }>()
  for (const d of deliveries) {
    const collapseKey = keyOf.get(d.messageId)
    if (collapseKey === undefined) continue
    const k = `${d.deviceId}\u0000${collapseKey}`
    const current = newest.get(k)
    if (!current || current.seq < d.seq) newest.set(k, { ...d, collapseKey })
  }
  if (newest.size === 0) return []
  const latest = [...newest.values()]
  const { rows } = await client.query<{ messageId: string, deviceId: string, byMessageId: string }>({
    name: 'herald_accept_collapse',
    text: `update deliveries d set status = 'replaced', reason = 'collapsed', replaced_by = t.message_id
     from unnest($1::text[], $2::text[], $3::bigint[], $4::uuid[]) as t(device_id, collapse_key, seq, message_id)
     where d.device_id = t.device_id and d.collapse_key = t.collapse_key and d.status = 'queued' and d.seq < t.seq
     returning d.message_id as "messageId", d.device_id as "deviceId", t.message_id as "byMessageId"`,
    values: [latest.map(d => d.deviceId), latest.map(d => d.collapseKey), latest.map(d => d.seq),
      latest.map(d => d.messageId)]
  })
  return rows
}
