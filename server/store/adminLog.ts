import type { Pool } from '../db/pool.js'
import type { AdminMessageDetail, AdminMessageRow, DeviceTimeline, UserSummary } from '../wire.js'
import { effectiveReason, effectiveStatus, statusBranches, waiting, type DeliveryStatus } from './deliveryStatus.js'
import { AT, MICROS, deliveryConditions, queryParams, type LogKey } from './logOrder.js'

/**
 * The admin's delivery log: one row per message, newest first in the order of
 * store/logOrder.ts, keyset-paginated on (accepted_at, seq). Deliveries copy a message's
 * accepted_at as queued_at, and a message's deliveries are inserted right after it in the same
 * locked transaction, in the same order, so their seqs are one unbroken run that sorts among
 * other messages' runs as the messages' seqs do: the log can be read from messages or from the
 * deliveries of one user / device / status in the same order, each through an index of
 * migration 0006 that seeks straight to the cursor.
 */
export interface AdminLogFilter {
  messageId?: string
  user?: string
  device?: string
  status?: DeliveryStatus
  since?: Date
  until?: Date
  /** case-insensitive substring of the title */
  text?: string
}

/** Position after the last row of a page: that message's accept time and seq, and its id. */
export interface AdminLogKey extends LogKey { id: string }

// beyond any accepted_at and seq: the key of "from the newest"
const NEWEST = 2n ** 62n
/** Users of a multi-user target shown in a log row. */
const TARGET_USERS_SHOWN = 3

function likePattern (text: string): string {
  return '%' + text.replace(/[\\%_]/g, c => '\\' + c) + '%'
}

export async function listMessageLog (
  pool: Pool,
  f: AdminLogFilter,
  after: AdminLogKey | undefined,
  limit: number
): Promise<{ rows: AdminMessageRow[], next: AdminLogKey | undefined }> {
  let keys: Array<{ id: string, at: string, seq: string }>
  const byDeliveries = f.user !== undefined || f.device !== undefined || f.status !== undefined
  if (f.messageId !== undefined) keys = await pageOfOne(pool, f)
  else if (byDeliveries) keys = await pageByDeliveries(pool, f, after, limit)
  else keys = await pageByMessages(pool, f, after, limit)
  const page = keys.slice(0, limit)
  const last = page[page.length - 1]
  const next = keys.length > limit ? { at: BigInt(last.at), seq: BigInt(last.seq), id: last.id } : undefined
  return { rows: await describeMessages(pool, page.map(r => r.id)), next }
}

type PageKeys = Array<{ id: string, at: string, seq: string }>

/** No delivery filter: a page of messages_admin_log, from the cursor (or `until`) down. */
async function pageByMessages (
  pool: Pool,
  f: AdminLogFilter,
  after: AdminLogKey | undefined,
  limit: number
): Promise<PageKeys> {
  const { values: params, bind: p } = queryParams()
  // start below the cursor and below `until`: the key (until, 0) excludes until itself (seqs
  // start at 1), so one row comparison bounds the index scan
  let start: LogKey = after ?? { at: NEWEST, seq: NEWEST }
  if (f.until !== undefined) {
    const until = BigInt(f.until.getTime()) * 1000n
    if (until <= start.at) start = { at: until, seq: 0n }
  }
  const cond: string[] = []
  if (f.since !== undefined) cond.push(`m.accepted_at >= ${p(f.since)}`)
  if (f.text !== undefined) cond.push(`m.title ilike ${p(likePattern(f.text))}`)
  cond.push(`(m.accepted_at, m.seq) < (${AT(p(start.at.toString()))}, ${p(start.seq.toString())}::bigint)`)
  const { rows } = await pool.query<PageKeys[number]>(
    `select m.id::text, ${MICROS('m.accepted_at')} as at, m.seq::text as seq from messages m
     where ${cond.join(' and ')}
     order by m.accepted_at desc, m.seq desc limit ${p(limit + 1)}`, params)
  return rows
}

/**
 * A user, device or status filter: a loose index scan over the matching deliveries. Each step
 * seeks to the next older matching delivery of another message: (queued_at, seq) below the
 * one just found, skipping the rest of that message's run (its other matching deliveries).
 * A status with several branches (store/deliveryStatus.ts) takes the newest of one seek per branch.
 */
async function pageByDeliveries (
  pool: Pool,
  f: AdminLogFilter,
  after: AdminLogKey | undefined,
  limit: number
): Promise<PageKeys> {
  const { values: params, bind: p } = queryParams()
  const cond = deliveryConditions(f, p)
  if (f.text !== undefined) {
    cond.push(`exists (select 1 from messages t
               where t.id = d.message_id and t.title ilike ${p(likePattern(f.text))})`)
  }
  const branches = f.status === undefined ? ['true'] : statusBranches('d', f.status)
  // the newest matching delivery below `bound`
  const nextMatch = (bound: string): string => {
    const seeks = branches.map(b => `(select d.queued_at, d.seq, d.message_id from deliveries d
        where ${[...cond, b, bound].join(' and ')} order by d.queued_at desc, d.seq desc limit 1)`)
    return seeks.length === 1
      ? seeks[0]
      : `(select * from (${seeks.join(' union all ')}) s order by 1 desc, 2 desc limit 1)`
  }
  // below the cursor's message: any one of its deliveries marks where its run is (the other
  // messages accepted at the same instant have runs wholly above or below it)
  const start = after === undefined
    ? 'true'
    : `(d.queued_at, d.seq) < (${AT(p(after.at.toString()))},
         coalesce((select c.seq from deliveries c where c.message_id = ${p(after.id)} limit 1), ${NEWEST}))
       and d.message_id <> ${p(after.id)}`
  const max = p(limit + 1)
  const { rows } = await pool.query<PageKeys[number]>(
    `with recursive walk (at, dseq, id, n) as (
       (select x.queued_at, x.seq, x.message_id, 1 from ${nextMatch(start)} x)
       union all
       (select x.queued_at, x.seq, x.message_id, w.n + 1 from walk w
        cross join lateral ${nextMatch('(d.queued_at, d.seq) < (w.at, w.dseq) and d.message_id <> w.id')} x
        where w.n < ${max})
     )
     select w.id::text, ${MICROS('w.at')} as at, m.seq::text as seq
     from walk w join messages m on m.id = w.id order by w.n`, params)
  return rows
}

async function pageOfOne (pool: Pool, f: AdminLogFilter): Promise<PageKeys> {
  const { values: params, bind: p } = queryParams([f.messageId])
  const cond = ['m.id = $1']
  const dcond: string[] = []
  if (f.user !== undefined) dcond.push(`d.user_id = ${p(f.user)}`)
  if (f.device !== undefined) dcond.push(`d.device_id = ${p(f.device)}`)
  if (f.status !== undefined) dcond.push(`(${statusBranches('d', f.status).join(' or ')})`)
  if (dcond.length > 0) {
    cond.push(`exists (select 1 from deliveries d where d.message_id = m.id and ${dcond.join(' and ')})`)
  }
  if (f.since !== undefined) cond.push(`m.accepted_at >= ${p(f.since)}`)
  if (f.until !== undefined) cond.push(`m.accepted_at < ${p(f.until)}`)
  if (f.text !== undefined) cond.push(`m.title ilike ${p(likePattern(f.text))}`)
  const { rows } = await pool.query<PageKeys[number]>(
    `select m.id::text, ${MICROS('m.accepted_at')} as at, m.seq::text as seq from messages m
     where ${cond.join(' and ')}`, params)
  return rows
}

const NO_COUNTS: Record<DeliveryStatus, number> = {
  queued: 0, sent: 0, delivered: 0, expired: 0, replaced: 0, revoked: 0
}

/** A row of describeMessages' query: the log row, and its target not yet put together. */
type DescribedRow = AdminMessageRow & {
  targetKind: 'user' | 'users' | 'topic'
  targetUser: string | null
  targetTopic: string | null
  targetUsers: string[] | null
  targetUserCount: number | null
}

/** Log rows for these messages, in the given order: the message, its target and its deliveries summed up. */
export async function describeMessages (pool: Pool, ids: string[]): Promise<AdminMessageRow[]> {
  if (ids.length === 0) return []
  const { rows } = await pool.query<DescribedRow>(
    `select m.id, m.title, m.priority, m.accepted_at as "acceptedAt", m.expires_at as "expiresAt",
            m.revoked_at as "revokedAt",
            k.name as sender, m.recipients, m.target_kind as "targetKind",
            m.target->>'user' as "targetUser", m.target->>'topic' as "targetTopic",
            jsonb_path_query_array(m.target, ('$.users[0 to ' || ($2::int - 1) || ']')::jsonpath) as "targetUsers",
            jsonb_array_length(case when m.target_kind = 'users' then m.target->'users' else '[]'::jsonb end)
              as "targetUserCount",
            coalesce(a.delivered, 0) as delivered, coalesce(a.counts, '{}') as counts, s.slowest
     from unnest($1::uuid[]) with ordinality as page(id, n)
     join messages m on m.id = page.id
     left join api_keys k on k.id = m.api_key_id
     -- one pass over the message's deliveries (counts per status, the longest accept -> PUBACK),
     -- then the device that took that long
     left join lateral (
       select sum(c.delivered)::int as delivered, jsonb_object_agg(c.status, c.n) as counts,
              max(c.slowest) as slowest_ms
       from (select ${effectiveStatus('d')} as status, count(*)::int as n, count(d.delivered_at) as delivered,
                    max(d.delivered_at - d.queued_at) as slowest
             from deliveries d where d.message_id = m.id group by 1) c
     ) a on true
     left join lateral (
       select jsonb_build_object('deviceId', d.device_id,
                                 'ms', round(extract(epoch from a.slowest_ms) * 1000)) as slowest
       from deliveries d where d.message_id = m.id and d.delivered_at - d.queued_at = a.slowest_ms limit 1
     ) s on true
     order by page.n`, [ids, TARGET_USERS_SHOWN])
  return rows.map(({ targetKind, targetUser, targetTopic, targetUsers, targetUserCount, counts, ...r }) => ({
    ...r,
    counts: { ...NO_COUNTS, ...counts },
    target: targetKind === 'user'
      ? { kind: 'user', user: targetUser ?? undefined }
      : targetKind === 'topic'
        ? { kind: 'topic', topic: targetTopic ?? undefined }
        : { kind: 'users', users: targetUsers ?? [], userCount: targetUserCount ?? 0 }
  }))
}

/**
 * An AdminMessageDetail (server/wire.ts) as read, with at most `limit` deliveries: `sender` is
 * null for a message sent from the admin UI, which server/admin names on its page.
 */
export type StoredMessageDetail = Omit<AdminMessageDetail, 'sender' | 'sentFromAdminUi'> & { sender: string | null }

export async function getMessageDetail (
  pool: Pool,
  id: string,
  limit: number
): Promise<StoredMessageDetail | undefined> {
  const message = await pool.query<Omit<StoredMessageDetail, 'deliveries' | 'counts' | 'total'>>(
    `select m.id, m.target, m.title, m.body, m.data, m.priority, m.collapse_key as "collapseKey", m.ttl,
            m.accepted_at as "acceptedAt", m.expires_at as "expiresAt", m.revoked_at as "revokedAt", m.recipients,
            k.name as sender, k.revoked_at is not null as "senderKeyRevoked"
     from messages m left join api_keys k on k.id = m.api_key_id where m.id = $1`, [id])
  if (!message.rows[0]) return undefined
  const [deliveries, counts] = await Promise.all([
    pool.query<DeviceTimeline>(
      `select d.device_id as "deviceId", d.user_id as "userId", ${effectiveStatus('d')} as status,
              ${effectiveReason('d')} as reason, d.replaced_by as "replacedBy", d.queued_at as "queuedAt",
              d.sent_at as "sentAt",
              d.delivered_at as "deliveredAt", d.displayed_at as "displayedAt", d.opened_at as "openedAt",
              d.dismissed_at as "dismissedAt", d.expires_at as "expiresAt"
       from deliveries d where d.message_id = $1
       order by ${waiting('d')} desc, d.user_id, d.device_id limit $2`, [id, limit]),
    pool.query<{ status: DeliveryStatus, n: number }>(
      `select ${effectiveStatus('d')} as status, count(*)::int as n
       from deliveries d where d.message_id = $1 group by 1`, [id])
  ])
  const byStatus: Record<DeliveryStatus, number> = { ...NO_COUNTS }
  let total = 0
  for (const r of counts.rows) {
    byStatus[r.status] = r.n
    total += r.n
  }
  return { ...message.rows[0], counts: byStatus, deliveries: deliveries.rows, total }
}

/**
 * A cheap fingerprint of a message's delivery state, so a watcher re-reads the detail only when
 * something changed. Undefined when there is no such message.
 */
export async function messageFingerprint (pool: Pool, id: string): Promise<string | undefined> {
  const { rows } = await pool.query<{ f: string | null }>(
    `select (select coalesce(revoked_at::text, '') from messages where id = $1) || '|' || count(*) || '|' ||
            coalesce(max(greatest(sent_at, delivered_at, displayed_at, opened_at, dismissed_at))::text, '') || '|' ||
            string_agg(distinct ${effectiveStatus('d')}, ',') || '|' || count(*) filter (where ${waiting('d')}) as f
     from deliveries d where d.message_id = $1`, [id])
  const f = rows[0]?.f
  if (f === null || f === undefined) {
    const exists = await pool.query('select 1 from messages where id = $1', [id])
    return exists.rowCount === 0 ? undefined : 'no-deliveries'
  }
  return f
}

/** User ids starting with `prefix` (devices known to the server), for the admin's user search. */
export async function searchUsers (pool: Pool, prefix: string, limit: number): Promise<UserSummary[]> {
  const { rows } = await pool.query(
    `select user_id as "userId", count(*)::int as devices, count(connected_node)::int as online,
            max(last_seen_at) as "lastSeenAt"
     from devices where user_id like $1
     group by user_id order by max(last_seen_at) desc nulls last, user_id limit $2`,
    [prefix.replace(/[\\%_]/g, c => '\\' + c) + '%', limit])
  return rows
}
