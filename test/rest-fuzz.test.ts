// A bounded fuzz of the REST surface (fast-check): random and mutated send bodies (single and
// batch), query strings and paths for every route, random Content-Type and Idempotency-Key. The
// server must never answer 5xx, every 4xx must be application/problem+json, and a valid send
// still gets 202 afterwards. On failure fast-check prints the seed and the shrunk request;
// FUZZ_SEED=<seed> replays it.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import fc from 'fast-check'
import { startTestHerald, ADMIN_PASSWORD, API_KEY, type TestHerald } from './helpers/herald.js'

const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31)
const RUNS = 150

let h: TestHerald
let session: { cookie: string, csrf: string }
before(async () => {
  h = await startTestHerald()
  const res = await fetch(`${h.url}/admin/api/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user: 'admin', password: ADMIN_PASSWORD })
  })
  assert.equal(res.status, 200)
  session = { cookie: res.headers.get('set-cookie')!.split(';')[0], csrf: (await res.json()).csrfToken }
})
after(async () => { await h.stop() })

interface Req { method: string, path: string, headers: Record<string, string>, body?: string | Buffer }
interface Answer { status: number, type: string, text: string }

/** node:http, not fetch: the path goes out exactly as generated (fetch would normalise it). */
function send (req: Req): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const url = new URL(h.url)
    const r = http.request({
      host: url.hostname, port: url.port, method: req.method, path: req.path, headers: req.headers, agent: false
    }, res => {
      const chunks: Buffer[] = []
      res.on('data', c => chunks.push(c))
      res.on('end', () => resolve({
        status: res.statusCode ?? 0,
        type: String(res.headers['content-type'] ?? ''),
        text: Buffer.concat(chunks).toString()
      }))
      res.on('error', reject)
    })
    // the server may answer (413, 401) and close before the whole body is written
    r.on('error', err => { if (!/EPIPE|ECONNRESET/.test((err as NodeJS.ErrnoException).code ?? '')) reject(err) })
    r.end(req.body)
  })
}

function check (req: Req, res: Answer): void {
  const context = `${req.method} ${req.path} ${JSON.stringify(req.headers)} ${String(req.body ?? '').slice(0, 300)}\n` +
    `→ ${res.status} ${res.text.slice(0, 300)}`
  assert.ok(res.status < 500, context)
  if (res.status < 400) return
  assert.match(res.type, /^application\/problem\+json/, context)
  // a 400 names what is wrong: the database's own refusal, a last resort, does not count
  const problem = JSON.parse(res.text)
  if (problem.code === 'invalid-request') {
    assert.ok(problem.errors?.length > 0 &&
      problem.errors.every((e: { field?: unknown }) => typeof e.field === 'string'), context)
  }
}

// characters that broke something once: NUL, halves of surrogate pairs, JSON and topic syntax
const nasty = fc.constantFrom('\u0000', '\ud800', '\udfff', '"', '\\', '/', '#', '+', '$', '%', '\u2028', '\ufeff')
const anyChar = fc.oneof(
  { weight: 1, arbitrary: nasty },
  { weight: 6, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) }
)
const text = fc.string({ unit: anyChar, maxLength: 40 })
const deep = fc.integer({ min: 1, max: 3_000 }).map(n => JSON.parse('['.repeat(n) + ']'.repeat(n)) as unknown)
const junk: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }), text, deep, fc.constantFrom(null, true, -1, 1e308, 2_419_201, 0.5, [], {}))

const fine = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 20 })
const validTarget = fc.oneof(
  fc.record({ user: fc.constantFrom('alice', 'bob') }),
  fc.record({ users: fc.array(fc.constantFrom('alice', 'bob', 'carol'), { minLength: 1, maxLength: 3 }) }),
  fc.record({ topic: fc.constant('news') })
)
const validSend = fc.record({
  to: validTarget,
  title: fine,
  body: fine,
  data: fc.dictionary(fine, fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }),
  ttl: fc.integer({ min: 0, max: 2_419_200 }),
  priority: fc.constantFrom('normal', 'high'),
  collapseKey: fine
}, { requiredKeys: ['to', 'title'] })

/** A hostile value for one field, shaped to get past the other checks where it can. */
const hostile: fc.Arbitrary<[string, unknown]> = fc.oneof(
  fc.tuple(
    fc.constantFrom('title', 'body', 'collapseKey', 'priority', 'ttl', 'data', 'to', 'extra'), fc.oneof(text, junk)),
  fc.tuple(fc.constant('to'), fc.oneof(
    text.map(user => ({ user })), text.map(topic => ({ topic })),
    fc.array(text, { maxLength: 3 }).map(users => ({ users }))
  )),
  fc.tuple(fc.constant('data'), fc.oneof(
    fc.dictionary(text, fc.oneof(text, fc.jsonValue({ maxDepth: 3 })), { minKeys: 1, maxKeys: 3 }),
    fc.tuple(text, deep).map(([k, v]) => ({ [k]: v }))
  ))
)

/** A send body: a valid one with 0 to 3 fields made missing, wrong or hostile. */
const sendBody = fc.tuple(validSend, fc.array(hostile, { maxLength: 3 })).map(([body, changes]) => {
  const changed: Record<string, unknown> = { ...body }
  for (const [field, value] of changes) changed[field] = value
  return changed
})

/** The body's text: as JSON, or JSON cut short or with a few characters changed. */
function bodyText (value: unknown): fc.Arbitrary<string> {
  const json = JSON.stringify(value) ?? 'null'
  return fc.oneof(
    { weight: 4, arbitrary: fc.constant(json) },
    { weight: 1, arbitrary: fc.nat(json.length).map(n => json.slice(0, n)) },
    {
      weight: 1,
      arbitrary: fc.tuple(fc.nat(json.length), anyChar).map(([n, c]) => json.slice(0, n) + c + json.slice(n + 1))
    }
  )
}

const headerValue = fc.string({
  unit: fc.integer({ min: 0x20, max: 0x7e }).map(c => String.fromCharCode(c)), maxLength: 300
})
const contentType = fc.oneof(
  { weight: 6, arbitrary: fc.constant('application/json') },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      'application/json; charset=utf-8', 'application/json; charset=latin1', 'text/plain', 'APPLICATION/JSON', '')
  },
  { weight: 1, arbitrary: headerValue }
)
const idempotencyKey = fc.option(fc.oneof(fc.constantFrom('order-1', 'order-2'), headerValue),
  { nil: undefined, freq: 2 })

// a path segment or query value: plain, or percent-encoded bytes that may not be UTF-8
const byte = fc.integer({ min: 0, max: 255 }).map(b => `%${b.toString(16).padStart(2, '0').toUpperCase()}`)
const segment = fc.oneof(
  fc.constantFrom('alice', 'phone-1', '00000000-0000-4000-8000-000000000000', '%00', '%FF', '%E0%A4%A', '%', '..', ''),
  // as UTF-8 bytes (encodeURIComponent throws on half a surrogate pair; Buffer writes U+FFFD)
  text.map(t => [...Buffer.from(t)].map(b => `%${b.toString(16).padStart(2, '0')}`).join('')),
  fc.array(byte, { minLength: 1, maxLength: 6 }).map(b => b.join(''))
)
const queryNames = [
  'user', 'device', 'status', 'since', 'until', 'limit', 'cursor', 'messageId', 'text', 'prefix', 'watch', 'x'
]
const query = fc.array(fc.tuple(
  fc.oneof(fc.constantFrom(...queryNames), segment),
  fc.oneof(segment, fc.constantFrom('queued', '2026-01-01', '10', '0', '-1'))
), { maxLength: 4 })
  .map(pairs => pairs.length === 0 ? '' : `?${pairs.map(([k, v]) => `${k}=${v}`).join('&')}`)

// every REST route with a parameter in its path or query; login and logout are left out (they
// would lock this address out or end the session the admin routes use)
const ROUTES: Array<[string, (s: string) => string]> = [
  ['GET', () => '/v1/messages'],
  ['GET', s => `/v1/messages/${s}`],
  ['DELETE', s => `/v1/messages/${s}`],
  ['GET', s => `/v1/users/${s}/devices`],
  ['DELETE', s => `/v1/devices/${s}`],
  ['GET', () => '/v1/api-keys'],
  ['DELETE', s => `/v1/api-keys/${s}`],
  ['GET', s => `/v1/${s}`],
  ['GET', () => '/admin/api/log'],
  ['GET', () => '/admin/api/users'],
  ['GET', () => '/admin/api/overview'],
  ['GET', s => `/admin/api/messages/${s}`],
  ['DELETE', s => `/admin/api/messages/${s}`],
  ['GET', s => `/admin/api/users/${s}/devices`],
  ['DELETE', s => `/admin/api/devices/${s}`],
  ['DELETE', s => `/admin/api/api-keys/${s}`],
  ['GET', s => `/admin/api/${s}`]
]
const credentials = fc.constantFrom<'apiKey' | 'admin' | 'session' | 'none'>(
  'apiKey', 'apiKey', 'admin', 'session', 'none')
function auth (kind: 'apiKey' | 'admin' | 'session' | 'none'): Record<string, string> {
  switch (kind) {
    case 'apiKey': return { authorization: `Bearer ${API_KEY}` }
    case 'admin': return { authorization: `Basic ${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64')}` }
    case 'session': return { cookie: session.cookie, 'x-herald-csrf': session.csrf }
    case 'none': return {}
  }
}

const property = (arb: fc.Arbitrary<Req>): Promise<void> =>
  fc.assert(fc.asyncProperty(arb, async req => check(req, await send(req))), { seed: SEED, numRuns: RUNS })

test(`send bodies (seed ${SEED})`, async () => {
  const arb = fc.tuple(
    sendBody.chain(bodyText), contentType, idempotencyKey, fc.constantFrom('/v1/messages', '/admin/api/messages'))
    .map(([body, type, key, path]): Req => ({
      method: 'POST',
      path,
      headers: {
        ...auth(path.startsWith('/admin') ? 'session' : 'apiKey'),
        'content-type': type,
        ...(key === undefined ? {} : { 'idempotency-key': key })
      },
      body
    }))
  await property(arb)
})

test(`batch bodies (seed ${SEED})`, async () => {
  const batch = fc.oneof(
    { weight: 4, arbitrary: fc.record({ messages: fc.array(sendBody, { maxLength: 5 }) }) },
    { weight: 1, arbitrary: fc.record({ messages: junk }) },
    { weight: 1, arbitrary: junk }
  )
  const arb = fc.tuple(batch.chain(bodyText), contentType, idempotencyKey).map(([body, type, key]): Req => ({
    method: 'POST',
    path: '/v1/messages/batch',
    headers: { ...auth('apiKey'), 'content-type': type, ...(key === undefined ? {} : { 'idempotency-key': key }) },
    body
  }))
  await property(arb)
})

test(`other JSON bodies: tokens, API keys (seed ${SEED})`, async () => {
  // a valid body with 0 to 2 fields made hostile
  const change = fc.tuple(fc.constantFrom('user', 'ttl', 'name', 'extra'), fc.oneof(text, junk))
  const routes = fc.constantFrom(['/v1/tokens', 'apiKey'], ['/v1/api-keys', 'admin'],
    ['/admin/api/tokens', 'session'], ['/admin/api/api-keys', 'session'])
  const body = fc.tuple(routes, fc.array(change, { maxLength: 2 })).map(([[path, kind], changes]) => {
    const changed: Record<string, unknown> = path.endsWith('tokens') ? { user: 'alice', ttl: 60 } : { name: 'fuzz' }
    for (const [field, value] of changes) changed[field] = value
    return { path, kind: kind as 'apiKey', changed }
  })
  const arb = body.chain(({ path, kind, changed }) =>
    fc.tuple(bodyText(changed), contentType).map(([text, type]): Req => ({
      method: 'POST', path, headers: { ...auth(kind), 'content-type': type }, body: text
    })))
  await property(arb)
})

test(`paths and query strings of every route (seed ${SEED})`, async () => {
  const arb = fc.tuple(fc.constantFrom(...ROUTES), segment, query, credentials)
    .map(([[method, path], s, q, kind]): Req => ({ method, path: path(s) + q, headers: auth(kind) }))
  await property(arb)
})

test('afterwards a valid send still gets 202', async () => {
  const res = await h.api('/v1/messages', { body: { to: { user: 'alice' }, title: 'after the fuzz' } })
  assert.equal(res.status, 202, JSON.stringify(res.body))
})
