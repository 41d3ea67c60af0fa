import { HeraldConnectionError, HeraldError, networkCode, type Problem } from './errors.js'

export interface RetryInfo {
  /** e.g. `POST /v1/messages` */
  request: string
  /** 1 for the first retry */
  retry: number
  /** how long the client waits before it */
  delayMs: number
  /** what the attempt before it ended with */
  error: HeraldError | HeraldConnectionError
}

export interface TransportOptions {
  baseUrl: string
  apiKey: string | undefined
  adminPassword: string | undefined
  timeoutMs: number
  retries: number
  retryDelayMs: number
  maxRetryDelayMs: number
  fetch: typeof fetch
  onRetry: ((info: RetryInfo) => void) | undefined
}

export interface CallOptions {
  /** abort the call (and its retries); it rejects with the signal's reason */
  signal?: AbortSignal
  /** overrides the client's `timeoutMs` for this call */
  timeoutMs?: number
}

export interface Call {
  method: 'GET' | 'POST' | 'DELETE'
  /** with its path parameters already encoded */
  path: string
  query?: Record<string, string | number | undefined>
  body?: unknown
  /** which credentials the route takes: an API key, or the admin's (HTTP Basic) */
  auth: 'apiKey' | 'admin'
  /**
   * Doing it twice is the same as once, so a request whose answer was lost may be sent again:
   * reads, revokes, device token signing, and sends carrying an Idempotency-Key (a repeat returns
   * the first answer and sends nothing).
   */
  idempotent: boolean
  idempotencyKey?: string
}

// Answers that say the request was not carried out: Herald answers 503 (database unavailable,
// shutting down: "nothing was stored") and 429 (the admin password was not checked) before doing
// anything, so any request may be sent again.
const NOT_DONE = new Set([429, 503])
// A proxy's answers after which the request may or may not have reached Herald: only for idempotent requests.
const MAYBE_DONE = new Set([502, 504])
// Network failures before a connection existed: the request never left, so any request may be sent again.
const NOT_CONNECTED = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT'])

/** One HTTP call with its retries: JSON in and out, problems as HeraldError. */
export async function request<T> (t: TransportOptions, call: Call, opts: CallOptions = {}): Promise<T> {
  const name = `${call.method} ${call.path}`
  const timeoutMs = opts.timeoutMs ?? t.timeoutMs
  const deadline = Date.now() + timeoutMs
  const timeout = AbortSignal.timeout(timeoutMs)
  const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout
  const url = new URL(t.baseUrl.replace(/\/+$/, '') + call.path)
  for (const [k, v] of Object.entries(call.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v))
  const headers: Record<string, string> = { accept: 'application/json, application/problem+json' }
  headers.authorization = authorization(t, call)
  // serialised once, so every attempt sends the same bytes as the Idempotency-Key's first use
  const body = call.body === undefined ? undefined : JSON.stringify(call.body)
  if (body !== undefined) headers['content-type'] = 'application/json'
  if (call.idempotencyKey !== undefined) headers['idempotency-key'] = call.idempotencyKey

  for (let retry = 0; ; retry++) {
    signal.throwIfAborted()
    let answer: { res: Response, text: string } | { failure: unknown }
    try {
      const res = await t.fetch(url, { method: call.method, headers, body, signal })
      // read here: a connection cut while the body arrives is a network failure too
      answer = { res, text: await res.text() }
    } catch (err) {
      // our timeout or the caller's signal: the reason (TimeoutError, AbortError) is the answer
      if (signal.aborted) throw signal.reason
      answer = { failure: err }
    }
    let error: HeraldError | HeraldConnectionError
    let retryable: boolean
    let retryAfterMs: number | undefined
    if ('failure' in answer) {
      error = new HeraldConnectionError(name, t.baseUrl, answer.failure)
      retryable = call.idempotent || NOT_CONNECTED.has(networkCode(answer.failure) ?? '')
    } else {
      const { res, text } = answer
      if (res.ok) return (text === '' ? undefined : JSON.parse(text)) as T
      const retryAfter = parseRetryAfter(res.headers.get('retry-after'))
      error = new HeraldError(name, res.status, parseProblem(res, text), retryAfter, res.statusText)
      retryable = NOT_DONE.has(res.status) || (call.idempotent && MAYBE_DONE.has(res.status))
      retryAfterMs = retryAfter === undefined ? undefined : retryAfter * 1000
    }
    if (!retryable || retry >= t.retries) throw error
    // the server said it will not work before then: waiting past the deadline only delays the error
    if (retryAfterMs !== undefined && Date.now() + retryAfterMs > deadline) throw error
    const delayMs = Math.min(Math.max(backoff(t.retryDelayMs, retry), retryAfterMs ?? 0), t.maxRetryDelayMs)
    if (Date.now() + delayMs > deadline) throw error
    t.onRetry?.({ request: name, retry: retry + 1, delayMs, error })
    await sleep(delayMs, signal)
  }
}

function authorization (t: TransportOptions, call: Call): string {
  if (call.auth === 'admin') {
    if (t.adminPassword === undefined) {
      throw new TypeError(`${call.method} ${call.path} needs the admin password: pass adminPassword to new Herald()`)
    }
    return 'Basic ' + btoa(`admin:${t.adminPassword}`)
  }
  if (t.apiKey === undefined) {
    throw new TypeError(`${call.method} ${call.path} needs an API key: pass apiKey to new Herald()`)
  }
  return `Bearer ${t.apiKey}`
}

/** Exponential with jitter, so that clients failed by the same outage do not all come back at once. */
function backoff (baseMs: number, retry: number): number {
  const ceiling = baseMs * 2 ** retry
  return ceiling / 2 + Math.random() * ceiling / 2
}

/** Retry-After in seconds: a number of seconds, or an HTTP date. */
function parseRetryAfter (value: string | null): number | undefined {
  if (value === null) return undefined
  if (/^\d+$/.test(value.trim())) return Number(value.trim())
  const at = Date.parse(value)
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - Date.now()) / 1000))
}

/** The problem document of an error answer; undefined for anything else (a proxy's HTML page). */
function parseProblem (res: Response, text: string): Problem | undefined {
  if (!/json/.test(res.headers.get('content-type') ?? '')) return undefined
  try {
    const body = JSON.parse(text) as Problem
    return typeof body?.code === 'string' && typeof body.detail === 'string' ? body : undefined
  } catch {
    return undefined
  }
}

function sleep (ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    // an abort event has already fired, and will not fire again, for a signal aborted before now
    if (signal.aborted) return reject(signal.reason)
    const done = (): void => {
      clearTimeout(timer)
      reject(signal.reason)
    }
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', done)
      resolve()
    }, ms)
    signal.addEventListener('abort', done, { once: true })
  })
}
