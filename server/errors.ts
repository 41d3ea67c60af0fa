/**
 * The catalogue of errors a client can get, and the one error type that carries them. `code` is
 * stable: clients branch on it. Every layer may throw a ProblemError; only server/http/ turns it
 * into an RFC 9457 application/problem+json answer (with `type` pointing at the code). Nothing
 * here knows about HTTP requests, so services and stores can use it.
 */
export const PROBLEMS = {
  'invalid-json': { status: 400, title: 'Request body is not valid JSON' },
  'invalid-request': { status: 400, title: 'Request is invalid' },
  unauthorized: { status: 401, title: 'Missing or invalid credentials' },
  forbidden: { status: 403, title: 'Not allowed' },
  'not-found': { status: 404, title: 'Not found' },
  'method-not-allowed': { status: 405, title: 'Method not allowed' },
  'unsupported-media-type': { status: 415, title: 'Request body must be application/json' },
  'payload-too-large': { status: 413, title: 'Payload too large' },
  'idempotency-key-reused': { status: 422, title: 'Idempotency-Key was used for a different request' },
  'token-signing-unavailable': { status: 501, title: 'This server cannot sign device tokens' },
  'too-many-requests': { status: 429, title: 'Too many requests' },
  'database-unavailable': { status: 503, title: 'Database unavailable' },
  'shutting-down': { status: 503, title: 'Server is shutting down' },
  internal: { status: 500, title: 'Internal server error' }
} as const

export type ProblemCode = keyof typeof PROBLEMS

export const PROBLEM_TYPE_BASE = 'https://herald.dev/problems/'

/** One field that is wrong, named by its JSON path (`to.users[3]`). */
export interface FieldError {
  field: string
  message: string
}

export class ProblemError extends Error {
  /**
   * @param extra members added to the problem body (`errors`, `limit`…)
   * @param headers response headers that go with it (`Retry-After`, `WWW-Authenticate`)
   */
  constructor (
    readonly code: ProblemCode,
    readonly detail: string,
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {}
  ) {
    super(detail)
  }

  get status (): number {
    return PROBLEMS[this.code].status
  }
}

/** The one answer to work refused while this server shuts down: 503, retry elsewhere or soon. */
export function shuttingDown (): ProblemError {
  return new ProblemError('shutting-down',
    'this server is shutting down; retry on another instance or in a few seconds', {}, { 'Retry-After': '5' })
}

/** A request whose fields are wrong: one 400 naming them all. */
export function invalidFields (errors: FieldError[]): ProblemError {
  const detail = errors.map(e => `${e.field}: ${e.message}`).join('; ')
  return new ProblemError('invalid-request', detail, { errors })
}
