import type pg from 'pg'
import { inTransaction, type Pool, type PoolClient } from '../db/pool.js'
import { ACCEPT_LOCK } from './accept.js'
import type { ExpiredReason, ReceiptEvent, RevokedReason } from '../wire.js'
import { COUNT_WAITING } from './deliveryStatus.js'

export type { DeliveryReason, ExpiredReason, ReceiptEvent, RevokedReason } from '../wire.js'

/** A queued delivery with what is needed to send it. */
export interface PendingDelivery {
  seq: number
  messageId: string
  userId: string
  topic: string | null
  /** ms since the epoch, as numbers: parsing two dates per row was a visible share of a backlog drain */
  expiresAt: number
  queuedAt: number
  payload: Buffer
}

/**
 * A page of a device's undelivered, unexpired queue, in accept order, after `afterSeq`, for each
 * of `pages` (one statement for many devices); the answer is in the order of `pages`.
 */
export async function pendingForDevices (db: Pool | PoolClient,
  pages: Array<{ deviceId: string, afterSeq: number, limit: number }>): Promise<PendingDelivery[][]> {
  const { rows } = await db.query<PendingDelivery & { n: number }>({
    name: 'herald_pending_for_devices',
    text: `select t.n::int as n, p.*
     from unnest($1::text[], $2::bigint[], $3::int[]) with ordinality as t(device_id, after_seq, page, n)
     cross join lateral (
       select d.seq, d.message_id as "messageId", d.user_id as "userId", m.topic,
              (extract(epoch from d.expires_at) * 1000)::float8 as "expiresAt",
              (extract(epoch from d.queued_at) * 1000)::float8 as "queuedAt", m.payload
       from deliveries d join messages m on m.id = d.message_id
       where d.device_id = t.device_id and d.status in ('queued', 'sent') and d.expires_at > now()
         and d.seq > t.after_seq
       order by d.seq limit t.page
     ) p
     order by t.n, p.seq`,
    values: [pages.map(p => p.deviceId), pages.map(p => p.afterSeq), pages.map(p => p.limit)]
  })
  const result: PendingDelivery[][] = pages.map(() => [])
  for (const { n, ...row } of rows) result[n - 1].push(row)
  return result
}

/**
 * The first pages of devices that just connected, read once every accept transaction running
 * now has committed (the accept lock, shared). An accept that read a device's connection before
 * the device connected here signalled its old node or nobody; waiting for it here means its rows
 * are in this read. Accepts that start later see the device connected here and signal it.
 */
export async function firstPagesForDevices (pool: Pool,
  pages: Array<{ deviceId: string, afterSeq: number, limit: number }>): Promise<PendingDelivery[][]> {
  return inTransaction(pool, client => pendingForDevices(client, pages),
    `select pg_advisory_xact_lock_shared(${ACCEPT_LOCK})`)
}

/**
 * A row the device may hold: written to it (`sent_at` set) and not yet recorded delivered. A
 * PUBACK or receipt for it records `delivered` even when it was revoked or expired after the
 * write: the device has it, and the record says so. (A replaced row was never written.)
 */
const WRITTEN_NOT_DELIVERED = "(d.status in ('queued', 'sent') or " +
  "(d.sent_at is not null and d.status in ('expired', 'revoked')))"

/**
 * `condition` as a CASE, which Postgres cannot answer from an index: for the state flush's
 * statements, which find their rows by seq and must do so whatever the statistics say. Written
 * plainly, after an ANALYZE that saw few pending rows, Postgres 15 and 18 chose generic plans that
 * read every pending row through the partial index deliveries_expiring and matched each with the
 * flush's seqs (a nested loop for `delivered`, a hash join for `expired`): a 500-row flush took
 * 0.4–35 s in bench scenario 7 (auto_explain), 6.3 s against 41 ms by seq with 50,000 rows
 * pending, and the ledger fell that far behind (test/state-flush-plan.test.ts).
 */
const checkedPerRow = (condition: string): string => `case when ${condition} then true else false end`

/**
 * Takes rows for writing to a device: each row still `queued` or `sent` (not replaced, revoked
 * or expired since it was read) becomes `sent`, and only the seqs returned may be written. This
 * is the one moment that decides between a write and a collapse, revoke or expiry: the accept's
 * collapse and a revoke update the same rows, so Postgres' row lock orders them, and whichever
 * commits first wins. A written row is never replaced; a replaced row is never written.
 * `firstSent` is false for rows already sent on an earlier connection (written again now).
 * A ttl-0 row (expires_at = queued_at) is for the connection it was offered to and has no TTL
 * to check here.
 */
export async function claimForSending (
  pool: Pool,
  seqs: number[]
): Promise<Array<{ seq: number, firstSent: boolean }>> {
  // One round trip without waiting for the WAL flush: the claim is on the path of every write to
  // a device, and a synchronous commit there made a device wait for an fsync per write (10,000
  // queued drained in 1,267 ms against 756 ms before claims). Visibility and row locks are the
  // same with an asynchronous commit, so collapse and revoke still meet the claim atomically;
  // only a crash of Postgres itself can lose the last fraction of a second of `sent` marks, and
  // those rows then read `queued` and are sent again, as at-least-once allows. The two statements
  // of one simple query run in one implicit transaction, which SET LOCAL applies to (and which is
  // rolled back whole on an error). Such a query takes no parameters: the seqs are integers
  // Postgres gave us, checked before they are written into it.
  for (const seq of seqs) if (!Number.isSafeInteger(seq)) throw new Error(`not a delivery seq: ${seq}`)
  type Claimed = pg.QueryResult<{ seq: string, firstSent: boolean }>
  const results = await pool.query(
    `set local synchronous_commit = off;
     with c as (
       select seq, sent_at from deliveries
       where seq = any('{${seqs.join(',')}}'::bigint[]) and status in ('queued', 'sent')
         and (expires_at > now() or expires_at = queued_at)
       for update
     )
     update deliveries d set status = 'sent', sent_at = coalesce(c.sent_at, now())
     from c where d.seq = c.seq
     returning d.seq::text as seq, c.sent_at is null as "firstSent"`) as unknown as [pg.QueryResult, Claimed]
  return results[1].rows.map(r => ({ seq: Number(r.seq), firstSent: r.firstSent }))
}

/** Rows claimed for a connection that closed before they were written: back to `queued`. */
export async function unclaim (pool: Pool, seqs: number[]): Promise<void> {
  await pool.query({
    name: 'herald_unclaim',
    text: "update deliveries set status = 'queued', sent_at = null where seq = any($1::bigint[]) and status = 'sent'",
    values: [seqs]
  })
}

/**
 * Delivery progress, collected by the engine and written in one statement per batch. A later
 * state never goes back: `delivered` moves a row the device may hold (WRITTEN_NOT_DELIVERED),
 * `expired` a queued or sent one. (`sent` is written before the PUBLISH: claimForSending.)
 */
export interface DeliveryUpdates {
  /** times in ms since the epoch (numbers travel to Postgres without per-element date formatting) */
  delivered: Array<{ seq: number, at: number }>
  expired: Array<{ seq: number, reason: ExpiredReason }>
}

export async function applyDeliveryUpdates (pool: Pool, u: DeliveryUpdates): Promise<void> {
  if (u.delivered.length > 0) {
    await pool.query({
      name: 'herald_mark_delivered',
      text: `update deliveries d set status = 'delivered', reason = null,
                                     sent_at = coalesce(d.sent_at, to_timestamp(t.at / 1000)),
                                     delivered_at = to_timestamp(t.at / 1000)
             from unnest($1::bigint[], $2::float8[]) as t(seq, at)
             where d.seq = t.seq and ${checkedPerRow(WRITTEN_NOT_DELIVERED)}`,
      values: [u.delivered.map(s => s.seq), u.delivered.map(s => s.at)]
    })
  }
  if (u.expired.length > 0) {
    await pool.query({
      name: 'herald_mark_expired',
      text: `update deliveries d set status = 'expired', reason = t.reason
             from unnest($1::bigint[], $2::text[]) as t(seq, reason)
             where d.seq = t.seq and ${checkedPerRow("d.status in ('queued', 'sent')")}`,
      values: [u.expired.map(e => e.seq), u.expired.map(e => e.reason)]
    })
  }
}

/**
 * Records receipts from devices. A receipt also proves delivery, so a delivery whose PUBACK
 * was lost is marked delivered too. A batch's receipts are folded into one row per delivery
 * first: an UPDATE … FROM updates a row once whatever the number of source rows joining it, so a
 * device's `displayed` and `opened` for one message in the same batch kept only one of them.
 * Message ids are UUIDs (broker/hooks.ts parseReceipt checks them), compared as uuid so that each
 * receipt is one probe of the (message_id, device_id) index; compared as text, a receipt read
 * every delivery its device ever had. Returns how many deliveries of those devices were updated.
 */
export async function recordReceipts (
  pool: Pool,
  receipts: Array<{ messageId: string, deviceId: string, event: ReceiptEvent, at: Date }>
): Promise<number> {
  if (receipts.length === 0) return 0
  const { rowCount } = await pool.query({
    name: 'herald_record_receipts',
    text: `update deliveries d set
       displayed_at = coalesce(d.displayed_at, t.displayed_at),
       opened_at = coalesce(d.opened_at, t.opened_at),
       dismissed_at = coalesce(d.dismissed_at, t.dismissed_at),
       delivered_at = coalesce(d.delivered_at, t.first_at),
       sent_at = coalesce(d.sent_at, t.first_at),
       status = case when ${WRITTEN_NOT_DELIVERED} then 'delivered' else d.status end,
       reason = case when ${WRITTEN_NOT_DELIVERED} then null else d.reason end
     from (select message_id, device_id, min(at) as first_at,
                  min(at) filter (where event = 'displayed') as displayed_at,
                  min(at) filter (where event = 'opened') as opened_at,
                  min(at) filter (where event = 'dismissed') as dismissed_at
           from unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[]) as r(message_id, device_id, event, at)
           group by message_id, device_id) t
     where d.message_id = t.message_id and d.device_id = t.device_id`,
    values: [receipts.map(r => r.messageId), receipts.map(r => r.deviceId), receipts.map(r => r.event),
      receipts.map(r => r.at)]
  })
  return rowCount ?? 0
}

/**
 * Expires deliveries whose message lived out its TTL. `graceSeconds` leaves a ttl-0 message
 * that is on its way to an online device time to be acknowledged; one still here after it was
 * for a connection that ended without it (its server stopped before saying so).
 */
export async function expireDue (pool: Pool, graceSeconds: number, limit: number): Promise<number> {
  const { rowCount } = await pool.query(
    `update deliveries set status = 'expired',
       reason = case when expires_at = queued_at then 'connection-ended' else 'ttl-ended' end
     where seq in (select seq from deliveries
                   where status in ('queued', 'sent') and expires_at < now() - make_interval(secs => $1)
                   order by expires_at limit $2)`, [graceSeconds, limit])
  return rowCount ?? 0
}

export async function deleteOldIdempotencyKeys (pool: Pool, hours: number): Promise<number> {
  const { rowCount } = await pool.query(
    'delete from idempotency_keys where created_at < now() - make_interval(hours => $1)', [hours])
  return rowCount ?? 0
}

/**
 * Revokes a message on every device that has not acknowledged it: queued rows are never written,
 * and sent ones (written, no PUBACK yet) are not written again. Undefined when there is no such message.
 */
export async function revokeMessage (
  pool: Pool,
  messageId: string,
  reason: RevokedReason
): Promise<{ revoked: Array<{ deviceId: string }> } | undefined> {
  return inTransaction(pool, async client => {
    const message = await client.query(
      'update messages set revoked_at = coalesce(revoked_at, now()) where id = $1 returning 1', [messageId])
    if (message.rowCount === 0) return undefined
    const { rows } = await client.query<{ deviceId: string }>(
      `update deliveries set status = 'revoked', reason = $2 where message_id = $1 and status in ('queued', 'sent')
       returning device_id as "deviceId"`, [messageId, reason])
    return { revoked: rows }
  })
}

/**
 * A clean connect starts with an empty session [MQTT-3.1.2-6]: what an earlier session left
 * queued (up to `uptoSeq`, the last seq committed before the connect) is ended, `revoked` when a
 * persistent session was discarded, `expired` when an earlier clean connection ended without it.
 */
export async function discardDeviceQueue (pool: Pool, deviceId: string, uptoSeq: number,
  reason: 'session-discarded' | 'clean-session-ended', heldBy?: string): Promise<number> {
  const status = reason === 'session-discarded' ? 'revoked' : 'expired'
  // heldBy: the clean connection that ended was on this node; if the device has connected to
  // another node since, its queue belongs to that session now and is left alone
  const { rowCount } = await pool.query(
    `update deliveries set status = $3, reason = $4
     where device_id = $1 and seq <= $2 and status in ('queued', 'sent')
       and ($5::text is null or not exists (
         select 1 from devices where device_id = $1 and connected_node is not null and connected_node <> $5))`,
    [deviceId, uptoSeq, status, reason, heldBy ?? null])
  return rowCount ?? 0
}

/** ttl-0 deliveries by seq, still queued, with what is needed to send them (another node accepted them). */
export async function liveDeliveries (
  pool: Pool,
  seqs: number[]
): Promise<Array<PendingDelivery & { deviceId: string }>> {
  if (seqs.length === 0) return []
  const { rows } = await pool.query<PendingDelivery & { deviceId: string }>({
    name: 'herald_live_deliveries',
    text: `select d.seq, d.device_id as "deviceId", d.message_id as "messageId", d.user_id as "userId", m.topic,
                  (extract(epoch from d.expires_at) * 1000)::float8 as "expiresAt",
                  (extract(epoch from d.queued_at) * 1000)::float8 as "queuedAt", m.payload
           from deliveries d join messages m on m.id = d.message_id
           where d.seq = any($1::bigint[]) and d.status = 'queued'
           order by d.seq`,
    values: [seqs]
  })
  return rows
}

/** Deliveries still waiting for their device (store/deliveryStatus.ts: not past their TTL), in the whole database. */
export async function countPendingDeliveries (pool: Pool): Promise<number> {
  const { rows } = await pool.query<{ n: number }>(`select ${COUNT_WAITING} as n`)
  return rows[0].n
}
