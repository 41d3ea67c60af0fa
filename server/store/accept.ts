import { inTransaction, type Pool, type PoolClient } from '../db/pool.js'

// Serialises accept transactions across every Herald process sharing the database, so that
// seq order (deliveries.seq, messages.seq) is commit order and devices get messages in the
// order they were accepted. Batching many messages per transaction keeps this cheap.
const ACCEPT_LOCK = 0x4865_7262

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
  idempotency?: { key: string, requestHash: string }
}

/** One queue entry created for a device. */
export interface NewDelivery {
  seq: number
  messageId: string
  deviceId: string
  userId: string
}

export type AcceptOutcome =
  | { kind: 'accepted', id: string, recipients: number, deliveries: NewDelivery[], replaced: Array<{ messageId: string, deviceId: string }> }
  | { kind: 'replay', status: number, response: unknown }
  | { kind: 'idempotency-conflict' }

interface Resolved { deviceId: string, userId: string }

/**
 * Commits a batch of messages with their deliveries in one transaction and returns one
 * outcome per message, in order. Nothing is visible (or sent) before the commit.
 */
export async function acceptBatch (pool: Pool, messages: NewMessage[]): Promise<AcceptOutcome[]> {
  return inTransaction(pool, async client => {
    await client.query('select pg_advisory_xact_lock($1)', [ACCEPT_LOCK])
    const outcomes: AcceptOutcome[] = []
    const seenKeys = new Map<string, { hash: string, outcome: AcceptOutcome }>()
    for (const message of messages) {
      const replay = await checkIdempotency(client, message, seenKeys)
      if (replay) {
        outcomes.push(replay)
        continue
      }
      const outcome = await acceptOne(client, message)
      if (message.idempotency) {
        const response = { id: outcome.id, recipients: outcome.recipients }
        await client.query(
          'insert into idempotency_keys (api_key_id, key, request_hash, status, response) values ($1, $2, $3, 202, $4)',
          [message.apiKeyId, message.idempotency.key, message.idempotency.requestHash, response])
        seenKeys.set(`${message.apiKeyId}\u0000${message.idempotency.key}`, { hash: message.idempotency.requestHash, outcome: { kind: 'replay', status: 202, response } })
      }
      outcomes.push(outcome)
    }
    return outcomes
  })
}

async function checkIdempotency (client: PoolClient, message: NewMessage, seen: Map<string, { hash: string, outcome: AcceptOutcome }>): Promise<AcceptOutcome | undefined> {
  if (!message.idempotency || !message.apiKeyId) return undefined
  const { key, requestHash } = message.idempotency
  const inBatch = seen.get(`${message.apiKeyId}\u0000${key}`)
  if (inBatch) return inBatch.hash === requestHash ? inBatch.outcome : { kind: 'idempotency-conflict' }
  const { rows } = await client.query<{ request_hash: string, status: number, response: unknown }>(
    `select request_hash, status, response from idempotency_keys
     where api_key_id = $1 and key = $2 and created_at > now() - make_interval(hours => $3)`,
    [message.apiKeyId, key, IDEMPOTENCY_WINDOW_HOURS])
  const row = rows[0]
  if (!row) {
    // an expired key may still be stored until the sweep: the new request takes it over
    await client.query('delete from idempotency_keys where api_key_id = $1 and key = $2', [message.apiKeyId, key])
    return undefined
  }
  return row.request_hash === requestHash ? { kind: 'replay', status: row.status, response: row.response } : { kind: 'idempotency-conflict' }
}

async function resolveTargets (client: PoolClient, message: NewMessage): Promise<Resolved[]> {
  // ttl 0: only devices online now. Otherwise every persistent session, plus online clean ones.
  const liveOnly = message.ttl === 0
  if ('topic' in message.target) {
    const ids = message.topicSubscribers ?? []
    if (ids.length === 0) return []
    const { rows } = await client.query<Resolved>(
      `select device_id as "deviceId", user_id as "userId" from devices
       where device_id = any($1::text[]) and (connected_node is not null or (persistent and not $2))
       order by device_id`, [ids, liveOnly])
    return rows
  }
  const users = 'user' in message.target ? [message.target.user] : message.target.users
  const { rows } = await client.query<Resolved>(
    `select device_id as "deviceId", user_id as "userId" from devices
     where user_id = any($1::text[]) and (connected_node is not null or (persistent and not $2))
     order by user_id, device_id`, [users, liveOnly])
  return rows
}

async function acceptOne (client: PoolClient, m: NewMessage): Promise<AcceptOutcome & { kind: 'accepted' }> {
  const targets = await resolveTargets(client, m)
  const kind = 'user' in m.target ? 'user' : 'users' in m.target ? 'users' : 'topic'
  await client.query(
    `insert into messages (id, target_kind, target, topic, title, body, data, priority, collapse_key, ttl,
                           accepted_at, expires_at, payload, api_key_id, recipients)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
    [m.id, kind, m.target, 'topic' in m.target ? m.target.topic : null, m.title, m.body, m.data, m.priority,
      m.collapseKey, m.ttl, m.acceptedAt, m.expiresAt, m.payload, m.apiKeyId, targets.length])
  if (targets.length === 0) return { kind: 'accepted', id: m.id, recipients: 0, deliveries: [], replaced: [] }

  const deviceIds = targets.map(t => t.deviceId)
  const { rows } = await client.query<NewDelivery>(
    `insert into deliveries (message_id, device_id, user_id, status, collapse_key, expires_at, queued_at)
     select $1, t.device_id, t.user_id, 'queued', $2, $3, $4
     from unnest($5::text[], $6::text[]) with ordinality as t(device_id, user_id, n)
     order by t.n
     returning seq, message_id as "messageId", device_id as "deviceId", user_id as "userId"`,
    [m.id, m.collapseKey, m.expiresAt, m.acceptedAt, deviceIds, targets.map(t => t.userId)])

  let replaced: Array<{ messageId: string, deviceId: string }> = []
  if (m.collapseKey !== null) {
    const result = await client.query<{ messageId: string, deviceId: string }>(
      `update deliveries set status = 'replaced'
       where device_id = any($1::text[]) and collapse_key = $2 and status in ('queued', 'sent') and message_id <> $3
       returning message_id as "messageId", device_id as "deviceId"`,
      [deviceIds, m.collapseKey, m.id])
    replaced = result.rows
  }
  return { kind: 'accepted', id: m.id, recipients: rows.length, deliveries: rows, replaced }
}
