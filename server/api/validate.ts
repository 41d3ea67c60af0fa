import type { IncomingMessage } from 'node:http'
import express, { type Request, type RequestHandler } from 'express'
import { ProblemError } from './problem.js'
import { DELIVERY_STATUSES, type DeliveryStatus } from '../store/deliveries.js'

// 1,000 user ids of 128 characters plus a 4 KiB message fit; anything larger is refused unparsed.
export const MAX_BODY_BYTES = 256 * 1024

/**
 * Parses a POST's JSON body of at most `limit` bytes. strict: false, so that a bare `3` gets
 * "must be an object" rather than a parse error.
 */
export function jsonBody (limit: number): RequestHandler {
  return express.json({ limit, strict: false, type: (req) => req.method === 'POST' })
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
