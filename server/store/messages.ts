import type { Pool } from '../db/pool.js'
import type { Delivery, DeliveryLogRow, MessageTarget, Priority } from '../wire.js'
import { effectiveReason, effectiveStatus, statusBranches, type DeliveryStatus } from './deliveryStatus.js'
import { AT, MICROS, deliveryConditions, queryParams, type LogKey } from './logOrder.js'

/** A message as stored; GET /v1/messages/{id} answers it as a MessageDetail (server/wire.ts). */
export interface MessageRow {
  id: string
  to: MessageTarget
  title: string | null
  body: string | null
  data: Record<string, unknown> | null
  priority: Priority
  collapseKey: string | null
  ttl: number
  acceptedAt: Date
  expiresAt: Date
  revokedAt: Date | null
  recipients: number
  apiKeyName: string | null
}

const DELIVERY_COLUMNS = `d.device_id as "deviceId", d.user_id as "userId", ${effectiveStatus('d')} as status,
  ${effectiveReason('d')} as reason, d.replaced_by as "replacedBy",
  d.queued_at as "queuedAt",
  d.sent_at as "sentAt", d.delivered_at as "deliveredAt", d.displayed_at as "displayedAt",
  d.opened_at as "openedAt", d.dismissed_at as "dismissedAt"`

export async function getMessage (
  pool: Pool,
  id: string
): Promise<(MessageRow & { deliveries: Delivery[] }) | undefined> {
  const message = await pool.query<MessageRow>(
    `select m.id, m.target as "to", m.title, m.body, m.data, m.priority, m.collapse_key as "collapseKey", m.ttl,
            m.accepted_at as "acceptedAt", m.expires_at as "expiresAt", m.revoked_at as "revokedAt", m.recipients,
            k.name as "apiKeyName"
     from messages m left join api_keys k on k.id = m.api_key_id where m.id = $1`, [id])
  if (!message.rows[0]) return undefined
  const deliveries = await pool.query<Delivery>(
    `select ${DELIVERY_COLUMNS} from deliveries d where d.message_id = $1 order by d.user_id, d.device_id`, [id])
  return { ...message.rows[0], deliveries: deliveries.rows }
}

export interface LogFilter {
  user?: string
  device?: string
  status?: DeliveryStatus
  since?: Date
  until?: Date
  /** return rows after this one in the log's order (the cursor) */
  after?: LogKey
  limit: number
}

/**
 * The delivery log, newest first in the order of store/logOrder.ts, keyset-paginated on
 * (queued_at, seq). Each filter has an index that starts with it and continues with that order
 * (migrations/0006_log_order.sql), so a page reads about `limit` index entries however many
 * millions of rows there are. A status filter is one ordered read per branch of the status
 * (store/deliveryStatus.ts), merged.
 */
export async function listDeliveries (
  pool: Pool,
  f: LogFilter
): Promise<{ items: DeliveryLogRow[], next: LogKey | undefined }> {
  const { values: params, bind: p } = queryParams()
  const where = deliveryConditions(f, p)
  if (f.after !== undefined) {
    where.push(`(d.queued_at, d.seq) < (${AT(p(f.after.at.toString()))}, ${p(f.after.seq.toString())}::bigint)`)
  }
  // one row more than asked says whether there is a next page
  const limit = p(f.limit + 1)
  const branches = f.status === undefined ? [] : statusBranches('d', f.status)
  const pick = (branches.length === 0 ? [undefined] : branches).map(branch => {
    const cond = branch === undefined ? where : [...where, branch]
    return `(select d.seq from deliveries d ${cond.length > 0 ? `where ${cond.join(' and ')}` : ''}
             order by d.queued_at desc, d.seq desc limit ${limit})`
  })
  const { rows } = await pool.query<DeliveryLogRow & { seq: string, at: string }>(
    `select d.seq::text as seq, ${MICROS('d.queued_at')} as at,
            d.message_id as "messageId", m.title, m.priority, d.expires_at as "expiresAt", ${DELIVERY_COLUMNS}
     from (${pick.join(' union all ')}) page
     join deliveries d on d.seq = page.seq join messages m on m.id = d.message_id
     order by d.queued_at desc, d.seq desc limit ${limit}`, params)
  const items = rows.slice(0, f.limit).map(({ seq, at, ...row }) => row)
  const last = rows[f.limit - 1]
  return { items, next: rows.length > f.limit ? { at: BigInt(last.at), seq: BigInt(last.seq) } : undefined }
}
