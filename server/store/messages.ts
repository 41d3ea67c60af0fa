import type { Pool } from '../db/pool.js'
import type { DeliveryStatus } from './deliveries.js'

export interface MessageRow {
  id: string
  to: unknown
  title: string | null
  body: string | null
  data: Record<string, unknown> | null
  priority: string
  collapseKey: string | null
  ttl: number
  acceptedAt: Date
  expiresAt: Date
  revokedAt: Date | null
  recipients: number
  apiKeyName: string | null
}

export interface DeliveryRow {
  deviceId: string
  userId: string
  status: DeliveryStatus
  queuedAt: Date
  sentAt: Date | null
  deliveredAt: Date | null
  displayedAt: Date | null
  openedAt: Date | null
  dismissedAt: Date | null
}

const DELIVERY_COLUMNS = `d.device_id as "deviceId", d.user_id as "userId", d.status, d.queued_at as "queuedAt",
  d.sent_at as "sentAt", d.delivered_at as "deliveredAt", d.displayed_at as "displayedAt",
  d.opened_at as "openedAt", d.dismissed_at as "dismissedAt"`

export async function getMessage (pool: Pool, id: string): Promise<(MessageRow & { deliveries: DeliveryRow[] }) | undefined> {
  const message = await pool.query<MessageRow>(
    `select m.id, m.target as "to", m.title, m.body, m.data, m.priority, m.collapse_key as "collapseKey", m.ttl,
            m.accepted_at as "acceptedAt", m.expires_at as "expiresAt", m.revoked_at as "revokedAt", m.recipients,
            k.name as "apiKeyName"
     from messages m left join api_keys k on k.id = m.api_key_id where m.id = $1`, [id])
  if (!message.rows[0]) return undefined
  const deliveries = await pool.query<DeliveryRow>(
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
  after?: LogPosition
  limit: number
}

/** A row's place in the log: newest first by accept time, then message id, then device id. */
export interface LogPosition { queuedAt: Date, messageId: string, deviceId: string }

export interface LogRow extends DeliveryRow {
  messageId: string
  title: string | null
  priority: string
  expiresAt: Date
}

/**
 * The delivery log, newest first, keyset-paginated on (queued_at, message_id, device_id). Each
 * filter has an index that starts with it and continues with that order, so a page reads about
 * `limit` index entries however many millions of rows there are.
 */
export async function listDeliveries (pool: Pool, f: LogFilter): Promise<LogRow[]> {
  const where: string[] = []
  const params: unknown[] = []
  const add = (sql: string, value: unknown): void => {
    params.push(value)
    where.push(sql.replace('?', `$${params.length}`))
  }
  if (f.user !== undefined) add('d.user_id = ?', f.user)
  if (f.device !== undefined) add('d.device_id = ?', f.device)
  if (f.status !== undefined) add('d.status = ?', f.status)
  if (f.since !== undefined) add('d.queued_at >= ?', f.since)
  if (f.until !== undefined) add('d.queued_at < ?', f.until)
  if (f.after !== undefined) {
    params.push(f.after.queuedAt, f.after.messageId, f.after.deviceId)
    where.push(`(d.queued_at, d.message_id, d.device_id) < ($${params.length - 2}, $${params.length - 1}, $${params.length})`)
  }
  params.push(f.limit)
  const { rows } = await pool.query<LogRow>(
    `select d.message_id as "messageId", m.title, m.priority, d.expires_at as "expiresAt", ${DELIVERY_COLUMNS}
     from deliveries d join messages m on m.id = d.message_id
     ${where.length > 0 ? `where ${where.join(' and ')}` : ''}
     order by d.queued_at desc, d.message_id desc, d.device_id desc limit $${params.length}`, params)
  return rows
}
