import type { Request } from 'express'
import { invalidFields, ProblemError, type FieldError } from '../errors.js'
import { isUuid, textProblem } from '../ids.js'
import { DELIVERY_STATUSES, type DeliveryStatus } from '../store/deliveryStatus.js'

// Checking request fields: every problem of a request is collected and reported at once, each
// named by its JSON path, as one 400 (errors.ts invalidFields).

/**
 * Collects every field error of a request, so the developer fixes them in one go, then throws
 * one 400 problem that names them all.
 */
export class Checker {
  constructor (private readonly prefix = '', readonly errors: FieldError[] = []) {}

  fail (field: string, message: string): void {
    const path = this.prefix === '' ? field : field === '' ? this.prefix : `${this.prefix}.${field}`
    this.errors.push({ field: path, message })
  }

  /** A checker for a nested object, naming its fields under `prefix` (`messages[2]` → `messages[2].to.user`). */
  within (prefix: string): Checker {
    return new Checker(this.prefix === '' ? prefix : `${this.prefix}.${prefix}`, this.errors)
  }

  done (): void {
    if (this.errors.length > 0) throw invalidFields(this.errors)
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
  // eslint-disable-next-line no-unmodified-loop-condition -- `problems` is counted up by fail(), called in the loop
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
export function rejectUnknown (
  check: Checker,
  object: Record<string, unknown>,
  allowed: readonly string[],
  prefix = ''
): void {
  for (const key of Object.keys(object)) {
    if (!allowed.includes(key)) check.fail(prefix + key, `unknown field; allowed: ${allowed.join(', ')}`)
  }
}

export function requireUuid (value: string, what: string): string {
  if (!isUuid(value)) {
    throw new ProblemError('not-found', `no ${what} with id ${JSON.stringify(value.slice(0, 64))} (ids are UUIDs)`)
  }
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
  constructor (
    private readonly check: Checker,
    private readonly query: Request['query'],
    allowed: readonly string[],
    private readonly emptyIsAbsent = false
  ) {
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

  /** One of `values`, or undefined when absent. */
  oneOf<T extends string> (name: string, values: readonly T[]): T | undefined {
    const value = this.text(name)
    if (value === undefined) return undefined
    if ((values as readonly string[]).includes(value)) return value as T
    this.check.fail(name, `must be one of ${values.join(', ')}`)
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
