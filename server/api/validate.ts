import type { IncomingMessage } from 'node:http'
import type { Request, RequestHandler } from 'express'
import { ProblemError } from './problem.js'
import { DELIVERY_STATUSES, type DeliveryStatus } from '../store/deliveryStatus.js'

// 1,000 user ids of 128 characters plus a 4 KiB message fit; anything larger is refused unparsed.
export const MAX_BODY_BYTES = 256 * 1024

/**
 * Parses a POST's JSON body of at most `limit` bytes into `req.body` (other methods pass
 * unread). strict: a bare `3` is parsed, so that it gets "must be an object" rather than a parse error.
 */
export function jsonBody (limit: number): RequestHandler {
  return (req, _res, next) => {
    if (req.method !== 'POST') return next()
    readJsonBody(req, limit).then(body => { req.body = body; next() }, next)
  }
}

/**
 * Reads and parses a JSON request body of at most `limit` bytes; an empty body is `{}`.
 *
 * Not body-parser: given a body over its limit, it reads all the rest before it answers 413, so
 * a client announcing 100 MB and sending 1 KB got no answer at all, and a real 100 MB was read
 * whole. Here an announced Content-Length over the limit is refused before a byte is read, and
 * a streamed (chunked) body as soon as it passes the limit; reading stops there, and the 413
 * closes the connection (sendError: an answer before the body's end says Connection: close).
 */
export function readJsonBody (req: IncomingMessage, limit: number): Promise<unknown> {
  const declared = req.headers['content-length']
  if (declared !== undefined && Number(declared) > limit) return Promise.reject(tooLarge(limit))
  const encoding = req.headers['content-encoding']?.trim().toLowerCase()
  if (encoding !== undefined && encoding !== '' && encoding !== 'identity') {
    const detail = `Content-Encoding ${JSON.stringify(encoding.slice(0, 32))} is not supported; send the body as is`
    return Promise.reject(new ProblemError('unsupported-media-type', detail))
  }
  const type = req.headers['content-type'] ?? ''
  const charset = /;\s*charset\s*=\s*"?([^";\s]*)/i.exec(type)?.[1].toLowerCase()
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
    const detail = `charset ${JSON.stringify(charset.slice(0, 32))} is not supported; JSON is UTF-8`
    return Promise.reject(new ProblemError('unsupported-media-type', detail))
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const done = (): void => {
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('error', onError)
    }
    const onData = (chunk: Buffer): void => {
      size += chunk.length
      if (size <= limit) {
        chunks.push(chunk)
        return
      }
      done()
      req.pause()
      reject(tooLarge(limit))
    }
    const onEnd = (): void => {
      done()
      try { resolve(parseJson(Buffer.concat(chunks).toString('utf8'))) } catch (err) { reject(err) }
    }
    const onError = (err: Error): void => { done(); reject(err) }
    req.on('data', onData)
    req.once('end', onEnd)
    req.once('error', onError)
  })
}

function tooLarge (limit: number): ProblemError {
  return new ProblemError('payload-too-large', `request body is larger than ${limit} bytes`, { limit })
}

function parseJson (text: string): unknown {
  // a byte order mark is not JSON, but some clients send one
  const json = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text
  if (json.trim() === '') return {}
  try {
    return JSON.parse(json)
  } catch (err) {
    throw new ProblemError('invalid-json', `request body is not valid JSON: ${(err as Error).message}`)
  }
}

/**
 * Refuses a request target that does not decode, before any route sees it: a path segment or a
 * query parameter that is not percent-encoded UTF-8 (`%E0%A4%A`, `%FF`: express' router throws
 * on the one, and its query parser turns the other into U+FFFD), and a query value holding
 * U+0000, which Postgres refuses. Query parameters are named; a path segment is quoted (which
 * route parameter it would be is only known once a route matches; routes check the decoded
 * values of their own parameters).
 */
export function checkRequestTarget (url: string): void {
  const check = new Checker()
  const q = url.indexOf('?')
  for (const segment of (q < 0 ? url : url.slice(0, q)).split('/')) {
    if (decode(segment) !== undefined) continue
    check.fail('path', `segment ${JSON.stringify(segment.slice(0, 64))} is not percent-encoded UTF-8`)
  }
  if (q >= 0) {
    for (const pair of url.slice(q + 1).split('&')) {
      const eq = pair.indexOf('=')
      const rawName = eq < 0 ? pair : pair.slice(0, eq)
      const name = decode(rawName.replaceAll('+', ' '))
      if (name === undefined || name.includes('\u0000')) {
        check.fail('query', `parameter name ${JSON.stringify(rawName.slice(0, 64))} is not percent-encoded UTF-8 text`)
        continue
      }
      const value = eq < 0 ? '' : decode(pair.slice(eq + 1).replaceAll('+', ' '))
      if (value === undefined) check.fail(name, 'is not percent-encoded UTF-8')
      else if (value.includes('\u0000')) check.fail(name, 'must not contain U+0000 (NUL, %00)')
    }
  }
  check.done()
}

function decode (text: string): string | undefined {
  if (!text.includes('%')) return text
  try { return decodeURIComponent(text) } catch { return undefined }
}

/** A request that carries a body must say it is JSON (415 otherwise); one without a body passes. */
export function requireJsonContent (req: IncomingMessage): void {
  const length = req.headers['content-length']
  const hasBody = (length !== undefined && length !== '0') || req.headers['transfer-encoding'] !== undefined
  if (!hasBody) return
  const type = req.headers['content-type']
  if (type?.split(';')[0].trim().toLowerCase() !== 'application/json') {
    throw new ProblemError('unsupported-media-type', `Content-Type must be application/json, got ${type ?? 'none'}`)
  }
}

/** One field that is wrong, named by its JSON path (`to.users[3]`). */
export interface FieldError {
  field: string
  message: string
}

/**
 * Collects every field error of a request, so the developer fixes them in one go, then throws
 * one 400 problem that names them all.
 */
export class Checker {
  constructor (private readonly prefix = '', readonly errors: FieldError[] = []) {}

  fail (field: string, message: string): void {
    this.errors.push({ field: this.prefix === '' ? field : field === '' ? this.prefix : `${this.prefix}.${field}`, message })
  }

  /** A checker for a nested object, naming its fields under `prefix` (`messages[2]` → `messages[2].to.user`). */
  within (prefix: string): Checker {
    return new Checker(this.prefix === '' ? prefix : `${this.prefix}.${prefix}`, this.errors)
  }

  done (): void {
    if (this.errors.length === 0) return
    const detail = this.errors.map(e => `${e.field}: ${e.message}`).join('; ')
    throw new ProblemError('invalid-request', detail, { errors: this.errors })
  }
}

export function typeName (value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'array'
  return typeof value
}

/** A value quoted in an error message: short, and never serialised whole (it may nest 100,000 levels). */
export function preview (value: unknown): string {
  if (typeof value === 'object' && value !== null) return typeName(value)
  const text = JSON.stringify(value) ?? String(value)
  return text.length > 64 ? `${text.slice(0, 60)}…` : text
}

// a UTF-16 code unit of a surrogate pair without its other half (JSON.parse accepts "\ud800")
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/

/**
 * Why a string cannot be stored as it is, or undefined. Postgres refuses U+0000 in text and in
 * jsonb, and refuses a lone surrogate in jsonb (in text it becomes U+FFFD); neither is text a
 * device could decode. Checked before a message reaches the accept transaction, where one
 * refused value would fail every message committed with it.
 */
export function textProblem (value: string): string | undefined {
  if (value.includes('\u0000')) return 'must not contain U+0000 (NUL)'
  if (LONE_SURROGATE.test(value)) return 'must be valid Unicode: it holds half of a surrogate pair (\\ud800–\\udfff)'
  return undefined
}

// problems reported from one JSON value: enough to fix the request, bounded however bad it is
const MAX_VALUE_PROBLEMS = 10

/**
 * Checks a parsed JSON value that is stored and sent as is (a message's `data`): it nests at
 * most `maxDepth` levels (the value itself is level 1), and every key and string is storable
 * text. Walks an explicit stack, not recursion, so a value nested 100,000 levels deep is refused
 * rather than overflowing the stack; nothing recursive (the payload, the Idempotency-Key hash)
 * may touch a body before this has passed. Problems are named by path: `data.a.b`, `data.list[3]`.
 */
export function checkJsonValue (check: Checker, field: string, value: unknown, maxDepth: number): void {
  const stack: Array<{ value: unknown, path: string, depth: number }> = [{ value, path: field, depth: 1 }]
  let problems = 0
  const fail = (path: string, message: string): void => {
    problems++
    check.fail(path, message)
  }
  while (stack.length > 0 && problems < MAX_VALUE_PROBLEMS) {
    const item = stack.pop()!
    if (typeof item.value === 'string') {
      const problem = textProblem(item.value)
      if (problem !== undefined) fail(item.path, problem)
      continue
    }
    if (typeof item.value !== 'object' || item.value === null) continue
    if (item.depth > maxDepth) {
      fail(item.path, `nests deeper than ${maxDepth} levels`)
      continue
    }
    const children: typeof stack = []
    if (Array.isArray(item.value)) {
      const depth = item.depth + 1
      item.value.forEach((child, i) => children.push({ value: child, path: `${item.path}[${i}]`, depth }))
    } else {
      for (const [key, child] of Object.entries(item.value)) {
        const path = `${item.path}${pathKey(key)}`
        const problem = textProblem(key)
        if (problem !== undefined) fail(path, `key ${problem}`)
        children.push({ value: child, path, depth: item.depth + 1 })
      }
    }
    // reversed, so that problems come out in document order
    for (let i = children.length - 1; i >= 0; i--) stack.push(children[i])
  }
}

/** `.name` for a plain key, `["a key"]` otherwise; a long key is cut, as the path only has to point at it. */
function pathKey (key: string): string {
  if (/^[A-Za-z_$][\w$]{0,63}$/.test(key)) return `.${key}`
  return `[${JSON.stringify(key.length > 64 ? `${key.slice(0, 60)}…` : key)}]`
}

export function isPlainObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** Rejects fields the endpoint does not know, so a typo (`titel`) is not silently ignored. */
export function rejectUnknown (check: Checker, object: Record<string, unknown>, allowed: readonly string[], prefix = ''): void {
  for (const key of Object.keys(object)) {
    if (!allowed.includes(key)) check.fail(prefix + key, `unknown field; allowed: ${allowed.join(', ')}`)
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
export const isUuid = (value: string): boolean => UUID.test(value)

export function requireUuid (value: string, what: string): string {
  if (!isUuid(value)) throw new ProblemError('not-found', `no ${what} with id ${JSON.stringify(value.slice(0, 64))} (ids are UUIDs)`)
  return value.toLowerCase()
}

/** A JSON request body that must be an object with only the `allowed` fields. */
export function objectBody (check: Checker, body: unknown, allowed: readonly string[]): Record<string, unknown> {
  if (!isPlainObject(body)) {
    check.fail('(body)', `must be a JSON object, got ${typeName(body)}`)
    check.done()
  }
  const b = body as Record<string, unknown>
  rejectUnknown(check, b, allowed)
  return b
}

/**
 * Reads a query string's parameters, each given at most once; problems go to `check`. With
 * `emptyIsAbsent` (a form's blank field), `status=` means no filter; otherwise it is a value.
 */
export class QueryReader {
  constructor (private readonly check: Checker, private readonly query: Request['query'], allowed: readonly string[], private readonly emptyIsAbsent = false) {
    rejectUnknown(check, query as Record<string, unknown>, allowed)
  }

  text (name: string): string | undefined {
    const value = this.query[name]
    if (value === undefined || (value === '' && this.emptyIsAbsent)) return undefined
    if (typeof value !== 'string') {
      this.check.fail(name, 'must be given once, as a plain value')
      return undefined
    }
    return value
  }

  date (name: string): Date | undefined {
    const value = this.text(name)
    if (value === undefined) return undefined
    const parsed = new Date(value)
    if (Number.isNaN(parsed.getTime()) || !/^\d{4}-\d{2}-\d{2}/.test(value)) {
      this.check.fail(name, `must be an ISO 8601 time such as 2026-01-31T12:00:00Z, got ${JSON.stringify(value)}`)
      return undefined
    }
    return parsed
  }

  status (name: string): DeliveryStatus | undefined {
    const value = this.text(name)
    if (value === undefined) return undefined
    if ((DELIVERY_STATUSES as readonly string[]).includes(value)) return value as DeliveryStatus
    this.check.fail(name, `must be one of ${DELIVERY_STATUSES.join(', ')}`)
    return undefined
  }

  whole (name: string, fallback: number, min: number, max: number): number {
    const value = this.text(name)
    if (value === undefined) return fallback
    const n = Number(value)
    if (!/^\d+$/.test(value) || n < min || n > max) {
      this.check.fail(name, `must be a whole number from ${min} to ${max}`)
      return fallback
    }
    return n
  }
}
