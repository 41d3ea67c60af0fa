// A synthetic delivery history for the admin log's tests and benchmark, written with
// insert … select generate_series (a million deliveries in seconds, no round trip per row).
import type pg from 'pg'

export interface SeedShape {
  /** user messages; each goes to every device of one user (1 to 3 devices, 2 on average) */
  messages: number
  users: number
  /** broadcast messages, each to every device */
  topicMessages: number
  /** the newest message is this long before `base`; messages are `spacingMs` apart */
  spacingMs: number
  base: Date
}

export interface Seeded { messages: number, deliveries: number, devices: number }

// Message j (1-based, oldest first) goes to user (j * 7919) % users, who has 1 + user % 3 devices.
/** Every RARE_EVERY-th message has the word "zebra" in its title. */
export const RARE_EVERY = 10_000
export const TITLES = ['Order shipped', 'Payment received', 'New message', 'Weekly digest', 'Reminder']

// Status of delivery (j, k), from a hash h of both: 85 % delivered, 5 % queued, 1 % sent,
// 6 % expired, 2 % replaced, 1 % revoked.
const STATUS_SQL = `case when h < 85 then 'delivered' when h < 90 then 'queued' when h < 91 then 'sent'
  when h < 97 then 'expired' when h < 99 then 'replaced' else 'revoked' end`

/**
 * Writes the history. Secondary indexes of messages and deliveries are dropped first and built
 * again at the end (the same definitions, read from pg_indexes): one sort per index instead of
 * a million index insertions, which makes seeding several times faster.
 */
export async function seedDeliveryHistory (pool: pg.Pool, shape: SeedShape): Promise<Seeded> {
  const { rows: indexes } = await pool.query<{ name: string, def: string }>(
    `select indexname as name, indexdef as def from pg_indexes i
     where tablename in ('messages', 'deliveries') and schemaname = current_schema()
       and not exists (select 1 from pg_constraint c where c.conname = i.indexname)`)
  for (const i of indexes) await pool.query(`drop index ${i.name}`)
  try {
    return await insertHistory(pool, shape)
  } finally {
    const client = await pool.connect()
    try {
      await client.query("set maintenance_work_mem = '256MB'")
      for (const i of indexes) await client.query(i.def)
    } finally {
      client.release()
    }
    await pool.query('analyze devices')
    await pool.query('analyze messages')
    await pool.query('analyze deliveries')
  }
}

async function insertHistory (pool: pg.Pool, shape: SeedShape): Promise<Seeded> {
  const { messages: M, users: U, base, spacingMs } = shape
  const acceptedAt = '($2::timestamptz - (($1::bigint - j) * $3::int + 1) * interval \'1 millisecond\')'
  await pool.query(
    `insert into devices (device_id, user_id, persistent, last_seen_at)
     select 'user-' || u || '-dev-' || k, 'user-' || u, true, $2::timestamptz - (u % 1000) * interval '1 minute'
     from generate_series(0, $1::int - 1) u cross join lateral generate_series(0, u % 3) k`, [U, base])
  await pool.query(
    `insert into messages (id, target_kind, target, title, body, priority, ttl, accepted_at, expires_at, payload,
                           recipients)
     select md5('m' || j)::uuid, 'user', jsonb_build_object('user', 'user-' || ((j * 7919) % $4::int)),
            case when j % ${RARE_EVERY} = 0 then 'Flash sale zebra #' || j
                 else ($5::text[])[1 + abs(hashint8(j)) % 5] || ' #' || j end,
            'Seeded message ' || j, case when j % 10 = 0 then 'high' else 'normal' end, 86400,
            ${acceptedAt}, ${acceptedAt} + interval '1 day', '\\x7b7d'::bytea, 1 + ((j * 7919) % $4::int) % 3
     from generate_series(1, $1::bigint) j`, [M, base, spacingMs, U, TITLES])
  // ordered by j, so seq follows accept order as the real accept path does
  await pool.query(
    `insert into deliveries (message_id, device_id, user_id, status, expires_at, queued_at, sent_at, delivered_at)
     select md5('m' || j)::uuid, 'user-' || u || '-dev-' || k, 'user-' || u, ${STATUS_SQL},
            ${acceptedAt} + interval '1 day', ${acceptedAt},
            case when h < 91 or h >= 97 then ${acceptedAt} + interval '3 milliseconds' end,
            case when h < 85 then ${acceptedAt} + ((h * 37) % 2000 + 5) * interval '1 millisecond' end
     from generate_series(1, $1::bigint) j
     cross join lateral (select (j * 7919) % $4::int as u) x
     cross join lateral generate_series(0, x.u % 3) k
     cross join lateral (select abs(hashint8(j * 4 + k)) % 100 as h) y
     order by j, k`, [M, base, spacingMs, U])
  // broadcasts at evenly spaced times among the user messages, to every device
  for (let t = 1; t <= shape.topicMessages; t++) {
    const j = Math.floor((M * t) / (shape.topicMessages + 1))
    const id = `${'0'.repeat(8)}-0000-4000-8000-${String(t).padStart(12, '0')}`
    // half a millisecond after user message j, so it sorts between two of them
    const at = new Date(base.getTime() - ((M - j) * spacingMs + 1))
    await pool.query(
      `insert into messages (id, target_kind, target, topic, title, priority, ttl, accepted_at, expires_at, payload,
                             recipients)
       values ($1::uuid, 'topic', '{"topic": "news"}', 'news', 'Broadcast ' || $2::int, 'normal', 86400,
               $3::timestamptz + interval '500 microseconds', $3::timestamptz + interval '1 day', '\\x7b7d'::bytea,
               (select count(*) from devices))`,
      [id, t, at])
    await pool.query(
      `insert into deliveries (message_id, device_id, user_id, status, expires_at, queued_at, sent_at, delivered_at)
       select m.id, d.device_id, d.user_id, case when d.device_id like '%-dev-2' then 'queued' else 'delivered' end,
              m.expires_at, m.accepted_at, m.accepted_at + interval '2 milliseconds',
              case when d.device_id like '%-dev-2' then null else m.accepted_at + interval '40 milliseconds' end
       from messages m cross join devices d where m.id = $1 order by d.device_id`, [id])
  }
  // what the expiry sweep would have written by now: no undelivered row is left long past its TTL
  await pool.query(
    "update deliveries set status = 'expired' where status in ('queued', 'sent') " +
    "and expires_at < $1::timestamptz - interval '1 minute'",
    [base])
  const { rows } = await pool.query<{ m: number, d: number, v: number }>(
    'select (select count(*)::int from messages) as m, (select count(*)::int from deliveries) as d, ' +
    '(select count(*)::int from devices) as v')
  return { messages: rows[0].m, deliveries: rows[0].d, devices: rows[0].v }
}
