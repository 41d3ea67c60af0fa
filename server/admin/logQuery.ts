import type { Request } from 'express'
import { Checker, QueryReader, isUuid } from '../api/validate.js'
import type { AdminLogFilter, AdminLogKey } from '../store/adminLog.js'

export const DEFAULT_LOG_PAGE = 25
export const MAX_LOG_PAGE = 100
const MAX_TEXT_LENGTH = 200

export interface LogQuery { filter: AdminLogFilter, after: AdminLogKey | undefined, limit: number }

export function encodeLogCursor (key: AdminLogKey): string {
  return Buffer.from(`m:${key.at}:${key.seq}:${key.id}`).toString('base64url')
}

function decodeLogCursor (check: Checker, cursor: string): AdminLogKey | undefined {
  const match = /^m:(\d{1,19}):(\d{1,19}):([0-9a-f-]{36})$/.exec(Buffer.from(cursor, 'base64url').toString())
  if (!match || !isUuid(match[3])) {
    check.fail('cursor', 'is not a cursor this server returned (use next from the previous page)')
    return undefined
  }
  return { at: BigInt(match[1]), seq: BigInt(match[2]), id: match[3] }
}

/** GET /admin/api/log's query: every problem reported at once, like the REST API does. */
export function parseLogQuery (query: Request['query']): LogQuery {
  const check = new Checker()
  const q = new QueryReader(check, query, ['messageId', 'user', 'device', 'status', 'since', 'until', 'text', 'limit', 'cursor'], true)
  const filter: AdminLogFilter = {}
  const messageId = q.text('messageId')?.trim()
  if (messageId !== undefined) {
    if (isUuid(messageId)) filter.messageId = messageId.toLowerCase()
    else check.fail('messageId', 'must be a message id (a UUID)')
  }
  filter.user = q.text('user')
  filter.device = q.text('device')
  filter.status = q.status('status')
  filter.since = q.date('since')
  filter.until = q.date('until')
  const text = q.text('text')
  if (text !== undefined) {
    if (text.length > MAX_TEXT_LENGTH) check.fail('text', `must be at most ${MAX_TEXT_LENGTH} characters`)
    else filter.text = text
  }
  const limit = q.whole('limit', DEFAULT_LOG_PAGE, 1, MAX_LOG_PAGE)
  const cursor = q.text('cursor')
  const after = cursor === undefined ? undefined : decodeLogCursor(check, cursor)
  check.done()
  for (const key of ['user', 'device', 'status', 'since', 'until', 'text'] as const) if (filter[key] === undefined) delete filter[key]
  return { filter, after, limit }
}
