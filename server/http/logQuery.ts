import type { Request } from 'express'
import type { LogKey } from '../store/logOrder.js'
import type { AdminLogFilter } from '../store/adminLog.js'
import { isUuid } from '../ids.js'
import { Checker, QueryReader } from './validate.js'

/**
 * The one query-string parser of the two delivery logs: `GET /v1/messages` (a row per delivery)
 * and the admin UI's `GET /admin/api/log` (a row per message). Both filter by user, device,
 * status and accept-time range and page with a cursor; the admin log also by message id and
 * title text. Every problem is reported at once.
 */
export interface LogQueryRules {
  /** parameters beyond user, device, status, since, until, limit and cursor */
  extra: ReadonlyArray<'messageId' | 'text'>
  defaultLimit: number
  maxLimit: number
  /** the member of the answer that holds the next page's cursor, named in the cursor's error */
  nextMember: string
  /** pages of messages: the cursor also names the last message */
  cursorHasId: boolean
  /** a form's blank fields: with this, `status=` means no filter rather than an invalid value */
  emptyIsAbsent: boolean
}

/** The admin log's filter is the widest; the REST log takes its user, device, status and time range. */
export type LogQueryFilter = AdminLogFilter

/** Where a page ends: a row's place in the log's order (store/logOrder.ts) and, per message, its id. */
export interface LogCursor extends LogKey { id?: string }

export interface LogQuery { filter: LogQueryFilter, after: LogCursor | undefined, limit: number }

const MAX_TEXT_LENGTH = 200

export function parseLogQuery (query: Request['query'], rules: LogQueryRules): LogQuery {
  const check = new Checker()
  const common = ['user', 'device', 'status', 'since', 'until', 'limit', 'cursor']
  const q = new QueryReader(check, query, [...rules.extra, ...common], rules.emptyIsAbsent)
  const filter: LogQueryFilter = {}
  if (rules.extra.includes('messageId')) {
    const messageId = q.text('messageId')?.trim()
    if (messageId !== undefined) {
      if (isUuid(messageId)) filter.messageId = messageId.toLowerCase()
      else check.fail('messageId', 'must be a message id (a UUID)')
    }
  }
  const present = <T>(value: T | undefined): value is T => value !== undefined
  const set = <K extends keyof LogQueryFilter>(key: K, value: LogQueryFilter[K] | undefined): void => {
    if (present(value)) filter[key] = value
  }
  set('user', q.text('user'))
  set('device', q.text('device'))
  set('status', q.status('status'))
  set('since', q.date('since'))
  set('until', q.date('until'))
  if (rules.extra.includes('text')) {
    const text = q.text('text')
    if (text !== undefined) {
      if (text.length > MAX_TEXT_LENGTH) check.fail('text', `must be at most ${MAX_TEXT_LENGTH} characters`)
      else filter.text = text
    }
  }
  const limit = q.whole('limit', rules.defaultLimit, 1, rules.maxLimit)
  const cursor = q.text('cursor')
  const after = cursor === undefined ? undefined : decodeLogCursor(check, cursor, rules)
  check.done()
  return { filter, after, limit }
}

// A cursor is opaque to clients: the row's accept time in microseconds and its seq, as decimal
// strings (both exceed what JSON numbers hold exactly), and the message id for a log per message.
export function encodeLogCursor (key: LogCursor): string {
  const parts = [key.at.toString(), key.seq.toString()]
  if (key.id !== undefined) parts.push(key.id)
  return Buffer.from(JSON.stringify(parts)).toString('base64url')
}

function decodeLogCursor (check: Checker, cursor: string, rules: LogQueryRules): LogCursor | undefined {
  try {
    const [at, seq, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString()) as unknown[]
    const decimal = (value: unknown): value is string => typeof value === 'string' && /^\d{1,19}$/.test(value)
    const idOk = rules.cursorHasId ? typeof id === 'string' && isUuid(id) : id === undefined
    if (decimal(at) && decimal(seq) && idOk) {
      return { at: BigInt(at), seq: BigInt(seq), ...(typeof id === 'string' ? { id } : {}) }
    }
  } catch {}
  check.fail('cursor', `is not a cursor this server returned (use ${rules.nextMember} from the previous page)`)
  return undefined
}
