import type { Request } from 'express'
import { Checker, isUuid, rejectUnknown } from '../api/validate.js'
import { DELIVERY_STATUSES, type DeliveryStatus } from '../store/deliveries.js'
import type { AdminLogFilter, LogKey } from '../store/adminLog.js'

export const DEFAULT_LOG_PAGE = 25
export const MAX_LOG_PAGE = 100
const MAX_TEXT_LENGTH = 200

export interface LogQuery { filter: AdminLogFilter, after: LogKey | undefined, limit: number }

export function encodeLogCursor (key: LogKey): string {
  return Buffer.from(`m:${key.at}:${key.id}`).toString('base64url')
}

function decodeLogCursor (check: Checker, cursor: string): LogKey | undefined {
  const match = /^m:(\d{1,19}):([0-9a-f-]{36})$/.exec(Buffer.from(cursor, 'base64url').toString())
  if (!match || !isUuid(match[2])) {
    check.fail('cursor', 'is not a cursor this server returned (use next from the previous page)')
    return undefined
  }
  return { at: BigInt(match[1]), id: match[2] }
}

/** GET /admin/api/log's query: every problem reported at once, like the REST API does. */
export function parseLogQuery (query: Request['query']): LogQuery {
  const check = new Checker()
  rejectUnknown(check, query as Record<string, unknown>, ['messageId', 'user', 'device', 'status', 'since', 'until', 'text', 'limit', 'cursor'])
  const single = (name: string): string | undefined => {
    const value = query[name]
    if (value === undefined || value === '') return undefined
    if (typeof value !== 'string') {
      check.fail(name, 'must be given once, as a plain value')
      return undefined
    }
    return value
  }
  const date = (name: string): Date | undefined => {
    const value = single(name)
    if (value === undefined) return undefined
    const parsed = new Date(value)
    if (Number.isNaN(parsed.getTime()) || !/^\d{4}-\d{2}-\d{2}/.test(value)) check.fail(name, `must be an ISO 8601 time such as 2026-01-31T12:00:00Z, got ${JSON.stringify(value)}`)
    return parsed
  }
  const filter: AdminLogFilter = {}
  const messageId = single('messageId')?.trim()
  if (messageId !== undefined) {
    if (isUuid(messageId)) filter.messageId = messageId.toLowerCase()
    else check.fail('messageId', 'must be a message id (a UUID)')
  }
  filter.user = single('user')
  filter.device = single('device')
  const status = single('status')
  if (status !== undefined) {
    if ((DELIVERY_STATUSES as readonly string[]).includes(status)) filter.status = status as DeliveryStatus
    else check.fail('status', `must be one of ${DELIVERY_STATUSES.join(', ')}`)
  }
  filter.since = date('since')
  filter.until = date('until')
  const text = single('text')
  if (text !== undefined) {
    if (text.length > MAX_TEXT_LENGTH) check.fail('text', `must be at most ${MAX_TEXT_LENGTH} characters`)
    else filter.text = text
  }
  let limit = DEFAULT_LOG_PAGE
  const rawLimit = single('limit')
  if (rawLimit !== undefined) {
    const n = Number(rawLimit)
    if (!/^\d+$/.test(rawLimit) || n < 1 || n > MAX_LOG_PAGE) check.fail('limit', `must be a whole number from 1 to ${MAX_LOG_PAGE}`)
    else limit = n
  }
  const cursor = single('cursor')
  const after = cursor === undefined ? undefined : decodeLogCursor(check, cursor)
  check.done()
  for (const key of ['user', 'device', 'since', 'until', 'text'] as const) if (filter[key] === undefined) delete filter[key]
  return { filter, after, limit }
}
