import { createHash } from 'node:crypto'
import { isValidTopicName, isValidUserId, MAX_ID_LENGTH, textProblem } from '../ids.js'
import { ProblemError } from '../errors.js'
import type { Target } from '../store/accept.js'
import {
  MAX_BATCH_MESSAGES, MAX_BATCH_USER_IDS, MAX_COLLAPSE_KEY_LENGTH, MAX_DATA_DEPTH, MAX_TTL, MAX_USERS_PER_MESSAGE,
  type SendInput
} from '../delivery/message.js'
import { DEFAULT_TOKEN_TTL, MAX_TOKEN_TTL } from '../auth/deviceTokens.js'
import { WEBHOOK_EVENT_TYPES } from '../webhooks/events.js'
import type { WebhookEventType } from '../wire.js'
import {
  Checker, checkJsonValue, isPlainObject, objectBody, preview, rejectUnknown, typeName
} from './validate.js'

// Request bodies of the REST API and the admin UI, validated into what the services take. Both
// surfaces parse with these, so a message, a token or a key is checked the same way on each.

/** 500 messages of up to 4 KiB fit; a larger body is refused unparsed. */
export const MAX_BATCH_BODY_BYTES = 2 * 1024 * 1024
const MAX_IDEMPOTENCY_KEY_LENGTH = 255
const MAX_API_KEY_NAME_LENGTH = 100

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
    check.fail('messages', `is required: an array of 1 to ${MAX_BATCH_MESSAGES} messages, ` +
      `each a POST /v1/messages body; got ${typeName(messages)}`)
    check.done()
  }
  const list = messages as unknown[]
  if (list.length === 0 || list.length > MAX_BATCH_MESSAGES) {
    check.fail('messages', `must hold 1 to ${MAX_BATCH_MESSAGES} messages, got ${list.length}; ` +
      'split larger sends into several requests')
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
  const userIds = inputs.reduce(
    (sum, input) => sum + (input !== undefined && 'users' in input.to ? input.to.users.length : 0), 0)
  if (userIds > MAX_BATCH_USER_IDS) {
    check.fail('messages',
      `list ${userIds} user ids in to.users together; a batch may list at most ${MAX_BATCH_USER_IDS}`)
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
    if (typeof b.ttl !== 'number' || !Number.isInteger(b.ttl)) {
      check.fail('ttl', `must be a whole number of seconds, got ${preview(b.ttl)}`)
    } else if (b.ttl < 0 || b.ttl > MAX_TTL) {
      check.fail('ttl', `must be from 0 to ${MAX_TTL} seconds (28 days), got ${b.ttl}`)
    } else ttl = b.ttl
  }
  let priority: 'normal' | 'high' = 'normal'
  if (b.priority !== undefined) {
    if (b.priority === 'normal' || b.priority === 'high') priority = b.priority
    else check.fail('priority', `must be "normal" or "high", got ${preview(b.priority)}`)
  }
  let collapseKey: string | null = null
  if (b.collapseKey !== undefined && b.collapseKey !== null) {
    if (typeof b.collapseKey !== 'string' || b.collapseKey.length === 0 ||
      b.collapseKey.length > MAX_COLLAPSE_KEY_LENGTH) {
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
    const got = keys.length === 0 ? 'none' : keys.map(k => JSON.stringify(k)).join(', ')
    check.fail('to', `must have exactly one of "user", "users", "topic"; got ${got}`)
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
export function idempotencyOf (
  header: string | string[] | undefined,
  body: unknown
): { key: string, requestHash: string } | undefined {
  if (header === undefined) return undefined
  const key = Array.isArray(header) ? header.join(', ') : header
  if (key.length === 0 || key.length > MAX_IDEMPOTENCY_KEY_LENGTH || !/^[\x21-\x7e]+$/.test(key)) {
    throw new ProblemError('invalid-request',
      `Idempotency-Key header must be 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} printable ASCII characters without spaces`,
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

/** POST /v1/tokens: the user a device token is for and how long it lasts. */
export function parseTokenRequest (body: unknown): { user: string, ttl: number } {
  const check = new Checker()
  const b = objectBody(check, body, ['user', 'ttl'])
  if (!isValidUserId(b.user)) {
    check.fail('user', 'is required: a user id of 1 to 128 characters without "/", "+", "#" or a leading "$"')
  }
  let ttl = DEFAULT_TOKEN_TTL
  if (b.ttl !== undefined) {
    if (typeof b.ttl !== 'number' || !Number.isInteger(b.ttl) || b.ttl < 1 || b.ttl > MAX_TOKEN_TTL) {
      check.fail('ttl', `must be a whole number of seconds from 1 to ${MAX_TOKEN_TTL} (30 days)`)
    } else ttl = b.ttl
  }
  check.done()
  return { user: b.user as string, ttl }
}

/** POST /v1/api-keys: the new key's name, trimmed. */
export function parseApiKeyRequest (body: unknown): { name: string } {
  const check = new Checker()
  const b = objectBody(check, body, ['name'])
  if (typeof b.name !== 'string' || b.name.trim().length === 0 || b.name.length > MAX_API_KEY_NAME_LENGTH) {
    check.fail('name', `is required: a string of 1 to ${MAX_API_KEY_NAME_LENGTH} characters that says who uses the key`)
  } else if (textProblem(b.name) !== undefined) check.fail('name', textProblem(b.name)!)
  check.done()
  return { name: (b.name as string).trim() }
}

const MAX_WEBHOOK_URL_LENGTH = 2_048
const MAX_WEBHOOK_DESCRIPTION_LENGTH = 200

/** Validates a POST /v1/webhooks body: an http(s) URL, the event types wanted, an optional description. */
export function parseWebhookRequest (body: unknown):
{ url: string, events: WebhookEventType[], description: string | null } {
  const check = new Checker()
  const b = objectBody(check, body, ['url', 'events', 'description'])
  let url: URL | undefined
  if (typeof b.url !== 'string' || b.url.length > MAX_WEBHOOK_URL_LENGTH) {
    check.fail('url', `is required: an http or https URL of at most ${MAX_WEBHOOK_URL_LENGTH} characters, ` +
      `got ${preview(b.url)}`)
  } else {
    url = URL.canParse(b.url) ? new URL(b.url) : undefined
    if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      check.fail('url', `must be an absolute http or https URL, got ${preview(b.url)}`)
    } else if (url.username !== '' || url.password !== '') {
      // the URL is shown in the admin UI and logs; a receiver checks the signature, not a password
      check.fail('url', 'must not carry a user or password; receivers verify the webhook-signature header instead')
    }
  }
  const events = b.events
  if (!Array.isArray(events) || events.length === 0) {
    check.fail('events', `is required: a non-empty array of event types (${WEBHOOK_EVENT_TYPES.join(', ')}), ` +
      `got ${preview(events)}`)
  } else {
    events.forEach((type, i) => {
      if (!WEBHOOK_EVENT_TYPES.includes(type)) {
        check.fail(`events[${i}]`, `unknown event type ${preview(type)}; one of ${WEBHOOK_EVENT_TYPES.join(', ')}`)
      }
    })
  }
  let description: string | null = null
  if (b.description !== undefined && b.description !== null) {
    if (typeof b.description !== 'string' || b.description.length > MAX_WEBHOOK_DESCRIPTION_LENGTH) {
      check.fail('description', `must be a string of at most ${MAX_WEBHOOK_DESCRIPTION_LENGTH} characters`)
    } else if (textProblem(b.description) !== undefined) {
      check.fail('description', textProblem(b.description)!)
    } else description = b.description
  }
  check.done()
  return { url: url!.toString(), events: [...new Set(events as WebhookEventType[])], description }
}
