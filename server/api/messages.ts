import { createHash } from 'node:crypto'
import { Router, type Request } from 'express'
import { isValidTopicName, isValidUserId, MAX_ID_LENGTH } from '../ids.js'
import type { Target } from '../store/accept.js'
import type { LogFilter } from '../store/messages.js'
import type { LogKey } from '../store/logOrder.js'
import { ProblemError } from './problem.js'
import { MAX_BATCH } from '../delivery/acceptor.js'
import { Checker, QueryReader, checkJsonValue, isPlainObject, isUuid, objectBody, preview, rejectUnknown, requireUuid, textProblem, typeName } from './validate.js'
import type { MessageService } from '../delivery/messageService.js'
import type { SendInput } from '../delivery/message.js'

/** 28 days: the default and the longest a message waits for a device. */
export const MAX_TTL = 2_419_200
export const MAX_USERS_PER_MESSAGE = 1_000
/** Messages in one POST /v1/messages/batch (one accept transaction holds at most this many). */
export const MAX_BATCH_MESSAGES = MAX_BATCH
/** User ids listed in `to.users` across one batch, so that one request cannot queue millions of rows. */
export const MAX_BATCH_USER_IDS = 10_000
/** 500 messages of up to 4 KiB fit; a larger body is refused unparsed. */
export const MAX_BATCH_BODY_BYTES = 2 * 1024 * 1024
/**
 * Levels of objects and arrays `data` may nest (`data` itself is level 1). Apps read a few
 * levels; the limit keeps every recursive step after validation (the payload, the
 * Idempotency-Key hash, jsonb) far from any stack limit.
 */
export const MAX_DATA_DEPTH = 32
const MAX_COLLAPSE_KEY_LENGTH = 128
const MAX_IDEMPOTENCY_KEY_LENGTH = 255
const DEFAULT_PAGE = 50
const MAX_PAGE = 200

const SEND_FIELDS = ['to', 'title', 'body', 'data', 'ttl', 'priority', 'collapseKey'] as const

/** Validates a POST /v1/messages body; every problem is reported at once. */
export function parseSendBody (body: unknown): SendInput {
  const check = new Checker()
  const input = readSendInput(check, objectBody(check, body, SEND_FIELDS))
  check.done()
  return input!
}

/**
 * Validates a POST /v1/messages/batch body: every problem of every message is reported at
 * once, named by its place (`messages[3].to.user`).
 */
export function parseBatchBody (body: unknown): SendInput[] {
  const check = new Checker()
  const b = objectBody(check, body, ['messages'])
  const messages = b.messages
  if (!Array.isArray(messages)) {
    check.fail('messages', `is required: an array of 1 to ${MAX_BATCH_MESSAGES} messages, each a POST /v1/messages body; got ${typeName(messages)}`)
    check.done()
  }
  const list = messages as unknown[]
  if (list.length === 0 || list.length > MAX_BATCH_MESSAGES) {
    check.fail('messages', `must hold 1 to ${MAX_BATCH_MESSAGES} messages, got ${list.length}; split larger sends into several requests`)
    check.done()
  }
  const inputs = list.map((item, i) => {
    const itemCheck = check.within(`messages[${i}]`)
    if (!isPlainObject(item)) {
      itemCheck.fail('', `must be a JSON object (a POST /v1/messages body), got ${typeName(item)}`)
      return undefined
    }
    rejectUnknown(itemCheck, item, SEND_FIELDS)
    return readSendInput(itemCheck, item)
  })
  const userIds = inputs.reduce((sum, input) => sum + (input !== undefined && 'users' in input.to ? input.to.users.length : 0), 0)
  if (userIds > MAX_BATCH_USER_IDS) {
    check.fail('messages', `list ${userIds} user ids in to.users together; a batch may list at most ${MAX_BATCH_USER_IDS}`)
  }
  check.done()
  return inputs as SendInput[]
}

/** One message's fields; problems go to `check` and make the result undefined. */
function readSendInput (check: Checker, b: Record<string, unknown>): SendInput | undefined {
  const errorsBefore = check.errors.length
  const to = parseTarget(check, b.to)
  let malformedContent = false
  const text = (field: 'title' | 'body'): string | null => {
    const value = b[field]
    if (value === undefined || value === null) return null
    if (typeof value === 'string') {
      const problem = textProblem(value)
      if (problem === undefined) return value
      check.fail(field, problem)
      return null
    }
    check.fail(field, `must be a string, got ${typeName(value)}`)
    malformedContent = true
    return null
  }
  const title = text('title')
  const bodyText = text('body')
  let data: Record<string, unknown> | null = null
  if (b.data !== undefined && b.data !== null) {
    if (isPlainObject(b.data)) {
      checkJsonValue(check, 'data', b.data, MAX_DATA_DEPTH)
      data = b.data
    } else {
      check.fail('data', `must be a JSON object, got ${typeName(b.data)}`)
      malformedContent = true
    }
  }
  if (title === null && bodyText === null && data === null && !malformedContent) {
    check.fail('title', 'a message needs at least one of title, body or data')
  }
  let ttl = MAX_TTL
  if (b.ttl !== undefined) {
    if (typeof b.ttl !== 'number' || !Number.isInteger(b.ttl)) check.fail('ttl', `must be a whole number of seconds, got ${preview(b.ttl)}`)
    else if (b.ttl < 0 || b.ttl > MAX_TTL) check.fail('ttl', `must be from 0 to ${MAX_TTL} seconds (28 days), got ${b.ttl}`)
    else ttl = b.ttl
  }
  let priority: 'normal' | 'high' = 'normal'
  if (b.priority !== undefined) {
    if (b.priority === 'normal' || b.priority === 'high') priority = b.priority
    else check.fail('priority', `must be "normal" or "high", got ${preview(b.priority)}`)
  }
  let collapseKey: string | null = null
  if (b.collapseKey !== undefined && b.collapseKey !== null) {
    if (typeof b.collapseKey !== 'string' || b.collapseKey.length === 0 || b.collapseKey.length > MAX_COLLAPSE_KEY_LENGTH) {
      check.fail('collapseKey', `must be a string of 1 to ${MAX_COLLAPSE_KEY_LENGTH} characters`)
    } else if (textProblem(b.collapseKey) !== undefined) {
      check.fail('collapseKey', textProblem(b.collapseKey)!)
    } else collapseKey = b.collapseKey
  }
  if (check.errors.length > errorsBefore) return undefined
  return { to: to!, title, body: bodyText, data, ttl, priority, collapseKey }
}

function parseTarget (check: Checker, to: unknown): Target | undefined {
  const shapes = '{"user": id}, {"users": [ids]} or {"topic": name}'
  if (to === undefined) {
    check.fail('to', `is required: ${shapes}`)
    return undefined
  }
  if (!isPlainObject(to)) {
    check.fail('to', `must be an object, one of ${shapes}; got ${typeName(to)}`)
    return undefined
  }
  const keys = Object.keys(to)
  if (keys.length !== 1 || !['user', 'users', 'topic'].includes(keys[0])) {
    check.fail('to', `must have exactly one of "user", "users", "topic"; got ${keys.length === 0 ? 'none' : keys.map(k => JSON.stringify(k)).join(', ')}`)
    return undefined
  }
  const idRule = `1 to ${MAX_ID_LENGTH} characters, without "/", "+", "#", control characters or a leading "$"`
  if ('user' in to) {
    if (!isValidUserId(to.user)) check.fail('to.user', `must be a user id: ${idRule}`)
    return { user: to.user as string }
  }
  if ('topic' in to) {
    if (!isValidTopicName(to.topic)) check.fail('to.topic', `must be a topic name: ${idRule}`)
    return { topic: to.topic as string }
  }
  const users = to.users
  if (!Array.isArray(users)) {
    check.fail('to.users', `must be an array of user ids, got ${typeName(users)}`)
    return undefined
  }
  if (users.length === 0 || users.length > MAX_USERS_PER_MESSAGE) {
    check.fail('to.users', `must hold 1 to ${MAX_USERS_PER_MESSAGE} user ids, got ${users.length}`)
    return undefined
  }
  users.forEach((u, i) => { if (!isValidUserId(u)) check.fail(`to.users[${i}]`, `must be a user id: ${idRule}`) })
  return { users: [...new Set(users as string[])] }
}

/**
 * The Idempotency-Key header, with the hash of the request body it is bound to. The body must
 * have passed parseSendBody/parseBatchBody first: the hash recurses into it, and validation is
 * what bounds its nesting.
 */
export function idempotencyOf (header: string | string[] | undefined, body: unknown): { key: string, requestHash: string } | undefined {
  if (header === undefined) return undefined
  const key = Array.isArray(header) ? header.join(', ') : header
  if (key.length === 0 || key.length > MAX_IDEMPOTENCY_KEY_LENGTH || !/^[\x21-\x7e]+$/.test(key)) {
    throw new ProblemError('invalid-request', `Idempotency-Key header must be 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} printable ASCII characters without spaces`,
      { errors: [{ field: 'Idempotency-Key', message: 'invalid' }] })
  }
  // key order does not make two requests different
  const requestHash = createHash('sha256').update(canonicalJson(body)).digest('hex')
  return { key, requestHash }
}

function canonicalJson (value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  if (isPlainObject(value)) {
    return `{${Object.keys(value).sort().map(k => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(',')}}`
  }
  return JSON.stringify(value) ?? 'null'
}

// A cursor is the last row's place in the log (store/logOrder.ts): its accept time in
// microseconds and its seq, as decimal strings (both exceed what JSON numbers hold exactly).
function encodeCursor (key: LogKey): string {
  return Buffer.from(JSON.stringify([key.at.toString(), key.seq.toString()])).toString('base64url')
}

function decodeCursor (check: Checker, cursor: string): LogKey | undefined {
  try {
    const [at, seq] = JSON.parse(Buffer.from(cursor, 'base64url').toString()) as unknown[]
    if (typeof at === 'string' && /^\d{1,19}$/.test(at) && typeof seq === 'string' && /^\d{1,19}$/.test(seq)) {
      return { at: BigInt(at), seq: BigInt(seq) }
    }
  } catch {}
  check.fail('cursor', 'is not a cursor this server returned (use nextCursor from the previous page)')
  return undefined
}

function parseLogQuery (query: Request['query']): LogFilter {
  const check = new Checker()
  const q = new QueryReader(check, query, ['user', 'device', 'status', 'since', 'until', 'limit', 'cursor'])
  const cursor = q.text('cursor')
  const filter: LogFilter = {
    user: q.text('user'),
    device: q.text('device'),
    status: q.status('status'),
    since: q.date('since'),
    until: q.date('until'),
    limit: q.whole('limit', DEFAULT_PAGE, 1, MAX_PAGE),
    after: cursor === undefined ? undefined : decodeCursor(check, cursor)
  }
  check.done()
  return filter
}

/** Reading and revoking; the two sends are served without express (sendRoutes.ts). */
export function messagesRouter (service: MessageService): Router {
  const router = Router()

  router.get('/', async (req, res) => {
    const { items, next } = await service.log(parseLogQuery(req.query))
    res.json({ items, nextCursor: next === undefined ? null : encodeCursor(next) })
  })

  router.get('/:id', async (req, res) => {
    const message = await service.get(requireUuid(req.params.id, 'message'))
    if (!message) throw new ProblemError('not-found', `no message with id ${req.params.id}`)
    res.json(message)
  })

  router.delete('/:id', async (req, res) => {
    const id = requireUuid(req.params.id, 'message')
    const result = await service.revoke(id, 'api')
    if (!result) throw new ProblemError('not-found', `no message with id ${id}`)
    res.json({ id, revoked: result.revoked })
  })

  return router
}
