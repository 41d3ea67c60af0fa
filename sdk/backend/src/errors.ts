import type { components } from './schema.js'

export type Problem = components['schemas']['Problem']
export type ProblemCode = components['schemas']['ProblemCode']
export type FieldError = components['schemas']['FieldError']

/**
 * An error answer from Herald (or from a proxy in front of it). Branch on `code`, which is stable;
 * `fields` names every wrong field of a 400 (`to.users[3]`), `problem` is the whole
 * application/problem+json body (`size`, `limit`, `field` for a payload that is too large).
 */
export class HeraldError extends Error {
  override readonly name = 'HeraldError'
  /** the HTTP status */
  readonly status: number
  /** Herald's problem code; `unexpected-response` for an error answer that is not a problem document (a proxy's) */
  readonly code: ProblemCode | 'unexpected-response'
  readonly title: string
  readonly detail: string
  /** every wrong field, for `invalid-request`; empty otherwise */
  readonly fields: FieldError[]
  /** the problem document as received, when there was one */
  readonly problem: Problem | undefined
  /** seconds the server asked to wait (`Retry-After`), when it said */
  readonly retryAfter: number | undefined
  /** the request that failed, e.g. `POST /v1/messages` */
  readonly request: string

  constructor (request: string, status: number, problem: Problem | undefined, retryAfter: number | undefined,
    statusText = '') {
    const detail = problem?.detail ?? `HTTP ${status} ${statusText}`.trim()
    super(`${request}: ${status} ${problem?.code ?? 'unexpected-response'}: ${detail}`)
    this.request = request
    this.status = status
    this.code = problem?.code ?? 'unexpected-response'
    this.title = problem?.title ?? (statusText || `HTTP ${status}`)
    this.detail = detail
    this.fields = problem?.errors ?? []
    this.problem = problem
    this.retryAfter = retryAfter
  }
}

/**
 * Herald could not be reached, or the connection failed before an answer came (`cause` is the
 * error fetch threw). Whether a request that failed this way was carried out is unknown: a send
 * retried with the same `idempotencyKey` is safe either way.
 */
export class HeraldConnectionError extends Error {
  override readonly name = 'HeraldConnectionError'
  readonly request: string

  constructor (request: string, baseUrl: string, cause: unknown) {
    const reason = networkCode(cause) ?? (cause instanceof Error ? cause.message : String(cause))
    super(`${request}: could not reach Herald at ${baseUrl} (${reason})`, { cause })
    this.request = request
  }
}

/** The system error code under fetch's `TypeError: fetch failed` (ECONNREFUSED, UND_ERR_SOCKET…), if any. */
export function networkCode (err: unknown): string | undefined {
  for (let e = err, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string') return code
  }
  return undefined
}
