import type { IncomingMessage } from 'node:http'
import { ProblemError } from '../errors.js'
import { Checker } from './validate.js'

// 1,000 user ids of 128 characters plus a 4 KiB message fit; anything larger is refused unparsed.
export const MAX_BODY_BYTES = 256 * 1024

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
