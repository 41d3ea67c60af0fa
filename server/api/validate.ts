import { ProblemError } from './problem.js'

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
  readonly errors: FieldError[] = []

  fail (field: string, message: string): void {
    this.errors.push({ field, message })
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
