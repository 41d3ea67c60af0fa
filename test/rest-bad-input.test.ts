// The REST bad-input matrix: issue 2, "Contract: backend" and "Bad input". Every refusal is an
// application/problem+json with a stable code and a detail (or errors[].field) naming the field.
import { test, after, before, describe } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import net from 'node:net'
import { startTestHerald, connectDevice, ADMIN_PASSWORD, API_KEY, type TestHerald } from './helpers/herald.js'

let h: TestHerald
before(async () => { h = await startTestHerald() })
after(async () => { await h.stop() })

type Res = { status: number, body: any, headers: Headers }

/** Asserts a problem response: status, content type, code, and that `field` is named. */
function assertProblem (res: Res, status: number, code: string, field?: string | RegExp): void {
  const context = JSON.stringify(res.body)
  assert.equal(res.status, status, context)
  assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/, context)
  assert.equal(res.body.code, code, context)
  assert.equal(res.body.status, status, context)
  assert.equal(res.body.type, `https://herald.dev/problems/${code}`, context)
  assert.equal(typeof res.body.title, 'string')
  assert.equal(typeof res.body.detail, 'string')
  if (field !== undefined) {
    const fields: string[] = (res.body.errors ?? []).map((e: { field: string }) => e.field)
    const named = typeof field === 'string'
      ? fields.includes(field) || res.body.detail.includes(field)
      : fields.some(f => field.test(f)) || field.test(res.body.detail)
    assert.ok(named, `expected ${field} to be named in ${context}`)
    if (typeof field === 'string' && res.body.errors) {
      assert.ok(fields.includes(field), `errors[].field should hold ${field}: ${context}`)
    }
  }
}

/** A raw request, to send bodies and headers fetch would fix up. */
async function raw (
  path: string, init: { method?: string, body?: string | Buffer, headers?: Record<string, string> } = {}
): Promise<Res> {
  const res = await fetch(h.url + path, {
    method: init.method ?? 'POST', headers: init.headers, body: init.body as BodyInit | undefined
  })
  const text = await res.text()
  let body: unknown = text
  try { body = JSON.parse(text) } catch {}
  return { status: res.status, body, headers: res.headers }
}

const send = (body: unknown): Promise<Res> => h.api('/v1/messages', { body })
const basic = (user: string, password: string): string =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`

describe('POST /v1/messages body', () => {
  test('malformed JSON → 400 invalid-json', async () => {
    const res = await h.api('/v1/messages', { body: '{"to": {"user": "alice"}, "title": ' })
    assertProblem(res, 400, 'invalid-json', /JSON/)
  })

  test('a body that is not an object → 400 invalid-request naming (body)', async () => {
    for (const body of ['[]', '"hello"', '42', 'null', 'true']) {
      const res = await h.api('/v1/messages', { body })
      assertProblem(res, 400, 'invalid-request', '(body)')
    }
  })

  test('a non-JSON content type → 415 unsupported-media-type', async () => {
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/xml']) {
      const res = await raw('/v1/messages', {
        headers: { authorization: `Bearer ${API_KEY}`, 'content-type': type },
        body: JSON.stringify({ to: { user: 'alice' }, title: 'x' })
      })
      assertProblem(res, 415, 'unsupported-media-type', /Content-Type/)
    }
    const none = await raw('/v1/messages', {
      headers: { authorization: `Bearer ${API_KEY}` }, body: Buffer.from('{"to":{"user":"a"},"title":"x"}')
    })
    assertProblem(none, 415, 'unsupported-media-type', /Content-Type/)
  })

  test('missing `to` → 400 naming to', async () => {
    assertProblem(await send({ title: 'x' }), 400, 'invalid-request', 'to')
  })

  test('unknown `to` shapes → 400 naming to', async () => {
    for (const to of [
      {}, { user: 'a', topic: 'b' }, { group: 'x' }, { user: 'a', users: ['b'] }, 'alice', ['alice'], null
    ]) {
      const res = await send({ to, title: 'x' })
      assertProblem(res, 400, 'invalid-request', 'to')
    }
  })

  test('wrong types → 400 naming each field', async () => {
    assertProblem(await send({ to: { user: 'a' }, title: 42 }), 400, 'invalid-request', 'title')
    assertProblem(await send({ to: { user: 'a' }, body: { text: 'x' } }), 400, 'invalid-request', 'body')
    assertProblem(await send({ to: { user: 'a' }, data: [1, 2] }), 400, 'invalid-request', 'data')
    assertProblem(await send({ to: { user: 'a' }, data: 'x' }), 400, 'invalid-request', 'data')
    assertProblem(await send({ to: { user: 'a' }, title: 'x', priority: 'urgent' }), 400, 'invalid-request', 'priority')
    assertProblem(await send({ to: { user: 'a' }, title: 'x', collapseKey: 7 }), 400, 'invalid-request', 'collapseKey')
    assertProblem(await send({ to: { user: 42 }, title: 'x' }), 400, 'invalid-request', 'to.user')
    assertProblem(await send({ to: { users: 'alice' }, title: 'x' }), 400, 'invalid-request', 'to.users')
    assertProblem(await send({ to: { topic: ['news'] }, title: 'x' }), 400, 'invalid-request', 'to.topic')
    assertProblem(await send({ to: { user: 'a' } }), 400, 'invalid-request', 'title')
  })

  test('every wrong field is reported at once', async () => {
    const res = await send({ to: { user: 'a' }, title: 1, data: [], priority: 'urgent', ttl: -1 })
    assertProblem(res, 400, 'invalid-request')
    assert.deepEqual(res.body.errors.map((e: { field: string }) => e.field).sort(),
      ['data', 'priority', 'title', 'ttl'])
  })

  test('negative, fractional, huge and non-numeric ttl → 400 naming ttl', async () => {
    for (const ttl of [-1, 1.5, 2_419_201, 1e20, '60', null]) {
      assertProblem(await send({ to: { user: 'a' }, title: 'x', ttl }), 400, 'invalid-request', 'ttl')
    }
    // the limits themselves are accepted
    for (const ttl of [0, 2_419_200]) {
      const ok = await send({ to: { user: 'a' }, title: 'x', ttl })
      assert.equal(ok.status, 202, JSON.stringify(ok.body))
    }
  })

  test('1001 users and an empty list → 400 naming to.users', async () => {
    const many = Array.from({ length: 1001 }, (_, i) => `user-${i}`)
    assertProblem(await send({ to: { users: many }, title: 'x' }), 400, 'invalid-request', 'to.users')
    assertProblem(await send({ to: { users: [] }, title: 'x' }), 400, 'invalid-request', 'to.users')
    const thousand = await send({ to: { users: many.slice(0, 1000) }, title: 'x' })
    assert.equal(thousand.status, 202, JSON.stringify(thousand.body))
  })

  test('user ids and topic names with "/", "#", "+", a leading "$" or too long → 400 naming the field', async () => {
    for (const bad of ['a/b', 'a#', '#', '+', '$SYS', '', 'x'.repeat(129), 'tab\there']) {
      assertProblem(await send({ to: { user: bad }, title: 'x' }), 400, 'invalid-request', 'to.user')
      assertProblem(await send({ to: { topic: bad }, title: 'x' }), 400, 'invalid-request', 'to.topic')
    }
    assertProblem(await send({ to: { users: ['ok', 'a/b', 'fine', 'c#'] }, title: 'x' }), 400, 'invalid-request',
      'to.users[1]')
    const res = await send({ to: { users: ['ok', 'a/b', 'fine', 'c#'] }, title: 'x' })
    assert.ok(res.body.errors.some((e: { field: string }) => e.field === 'to.users[3]'))
  })

  test('an unknown top-level field → 400 naming it', async () => {
    assertProblem(await send({ to: { user: 'a' }, titel: 'typo' }), 400, 'invalid-request', 'titel')
  })

  test('a device payload over 4 KiB → 413 payload-too-large', async () => {
    const res = await send({ to: { user: 'a' }, body: 'x'.repeat(4_100) })
    assertProblem(res, 413, 'payload-too-large', /title, body, data/)
    assert.equal(res.body.limit, 4096)
    assert.ok(res.body.size > 4096)
    // multi-byte characters count in bytes
    const wide = await send({ to: { user: 'a' }, body: 'é'.repeat(2_100) })
    assertProblem(wide, 413, 'payload-too-large')
    const fits = await send({ to: { user: 'a' }, body: 'x'.repeat(3_500) })
    assert.equal(fits.status, 202, JSON.stringify(fits.body))
  })

  test('a body over the request limit is refused with 413 before it is parsed', async () => {
    // 4 MB of (invalid) JSON: if it were parsed the answer would be 400 invalid-json
    const big = Buffer.alloc(4 * 1024 * 1024, 'x')
    const res = await rawRequest('/v1/messages', big,
      { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` })
    assert.equal(res.status, 413, res.text)
    assert.match(res.contentType, /^application\/problem\+json/)
    assert.equal(JSON.parse(res.text).code, 'payload-too-large')
    // chunked, without a content-length: refused once the limit is crossed
    const chunked = await rawRequest('/v1/messages', big, {
      'content-type': 'application/json', authorization: `Bearer ${API_KEY}`, 'transfer-encoding': 'chunked'
    })
    assert.equal(chunked.status, 413, chunked.text)
    assert.equal(JSON.parse(chunked.text).code, 'payload-too-large')
    // the server is still fine
    assert.equal((await send({ to: { user: 'a' }, title: 'after' })).status, 202)
  })

  test('a bad Idempotency-Key header → 400 naming it', async () => {
    const res = await h.api('/v1/messages', {
      body: { to: { user: 'a' }, title: 'x' }, headers: { 'idempotency-key': 'has space' }
    })
    assertProblem(res, 400, 'invalid-request', 'Idempotency-Key')
  })
})

describe('credentials', () => {
  test('missing Authorization → 401', async () => {
    const res = await raw('/v1/messages', { headers: { 'content-type': 'application/json' }, body: '{}' })
    assertProblem(res, 401, 'unauthorized', /Authorization/)
    assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer/)
    assertProblem(await raw('/v1/users/a/devices', { method: 'GET' }), 401, 'unauthorized')
  })

  test('a wrong API key, or a malformed header → 401', async () => {
    assertProblem(await h.api('/v1/messages', { body: { to: { user: 'a' }, title: 'x' }, headers: { authorization: 'Bearer hk_wrong_key_0123456789abcdef0123456789' } }), 401, 'unauthorized', /API key/)
    assertProblem(await h.api('/v1/messages', { body: { to: { user: 'a' }, title: 'x' }, headers: { authorization: API_KEY } }), 401, 'unauthorized', /Bearer/)
    assertProblem(await h.api('/v1/messages', { body: { to: { user: 'a' }, title: 'x' }, headers: { authorization: basic('admin', ADMIN_PASSWORD) } }), 401, 'unauthorized', /Bearer/)
  })

  test('a revoked API key → 401 at once on the server that revoked it', async () => {
    const created = await h.api('/v1/api-keys', {
      body: { name: 'short-lived' }, headers: { authorization: basic('admin', ADMIN_PASSWORD) }
    })
    assert.equal(created.status, 201, JSON.stringify(created.body))
    const key: string = created.body.key
    const withKey = (path: string): Promise<Res> => h.api(path, { headers: { authorization: `Bearer ${key}` } })
    assert.equal((await withKey('/v1/users/a/devices')).status, 200) // and now cached
    const revoked = await h.api(`/v1/api-keys/${created.body.id}`, {
      method: 'DELETE', headers: { authorization: basic('admin', ADMIN_PASSWORD) }
    })
    assert.equal(revoked.status, 200, JSON.stringify(revoked.body))
    assertProblem(await withKey('/v1/users/a/devices'), 401, 'unauthorized', /revoked/)
    assertProblem(await h.api('/v1/messages', {
      body: { to: { user: 'a' }, title: 'x' }, headers: { authorization: `Bearer ${key}` }
    }), 401, 'unauthorized')
  })

  test('an API key cannot manage API keys → 401', async () => {
    for (const [method, path] of [
      ['GET', '/v1/api-keys'], ['POST', '/v1/api-keys'], ['DELETE', '/v1/api-keys/00000000-0000-4000-8000-000000000000']
    ]) {
      const res = await h.api(path, { method, ...(method === 'POST' ? { body: { name: 'sneaky' } } : {}) })
      assertProblem(res, 401, 'unauthorized', /API keys cannot manage API keys/)
      assert.match(res.headers.get('www-authenticate') ?? '', /^Basic/)
    }
  })

  test('a wrong admin user or password → 401', async () => {
    for (const auth of [
      basic('admin', 'wrong-password'), basic('root', ADMIN_PASSWORD), basic('admin', ''), 'Basic !!!', 'Basic'
    ]) {
      const res = await h.api('/v1/api-keys', { headers: { authorization: auth } })
      assertProblem(res, 401, 'unauthorized')
    }
    assert.equal(
      (await h.api('/v1/api-keys', { headers: { authorization: basic('admin', ADMIN_PASSWORD) } })).status, 200)
  })

  test('POST /v1/api-keys bad input → 400 naming the field', async () => {
    const admin = { authorization: basic('admin', ADMIN_PASSWORD) }
    assertProblem(await h.api('/v1/api-keys', { body: {}, headers: admin }), 400, 'invalid-request', 'name')
    assertProblem(await h.api('/v1/api-keys', { body: { name: '  ' }, headers: admin }), 400, 'invalid-request', 'name')
    assertProblem(await h.api('/v1/api-keys', { body: { name: 'x', scope: 'all' }, headers: admin }), 400,
      'invalid-request', 'scope')
    assertProblem(await h.api('/v1/api-keys/not-a-uuid', { method: 'DELETE', headers: admin }), 404, 'not-found')
    assertProblem(
      await h.api('/v1/api-keys/00000000-0000-4000-8000-000000000000', { method: 'DELETE', headers: admin }),
      404, 'not-found')
  })
})

describe('ids and other routes', () => {
  test('an unknown message id → 404; a non-UUID id → 404', async () => {
    const unknown = '6f1c2b3a-0000-4000-8000-000000000000'
    assertProblem(await h.api(`/v1/messages/${unknown}`), 404, 'not-found', unknown)
    assertProblem(await h.api(`/v1/messages/${unknown}`, { method: 'DELETE' }), 404, 'not-found', unknown)
    assertProblem(await h.api('/v1/messages/not-a-uuid'), 404, 'not-found', /not-a-uuid/)
    assertProblem(await h.api('/v1/messages/not-a-uuid', { method: 'DELETE' }), 404, 'not-found')
    assertProblem(await h.api(`/v1/messages/${'9'.repeat(300)}`), 404, 'not-found')
  })

  test('an unknown route under /v1 → 404 problem', async () => {
    assertProblem(await h.api('/v1/nothing-here'), 404, 'not-found', /nothing-here/)
  })

  test('delivery log query mistakes → 400 naming the parameter', async () => {
    assertProblem(await h.api('/v1/messages?limit=0'), 400, 'invalid-request', 'limit')
    assertProblem(await h.api('/v1/messages?limit=abc'), 400, 'invalid-request', 'limit')
    assertProblem(await h.api('/v1/messages?status=lost'), 400, 'invalid-request', 'status')
    assertProblem(await h.api('/v1/messages?since=yesterday'), 400, 'invalid-request', 'since')
    assertProblem(await h.api('/v1/messages?cursor=garbage'), 400, 'invalid-request', 'cursor')
    assertProblem(await h.api('/v1/messages?user=a&user=b'), 400, 'invalid-request', 'user')
    assertProblem(await h.api('/v1/messages?colour=red'), 400, 'invalid-request', 'colour')
  })

  test('GET /v1/users/{bad}/devices → 400', async () => {
    assertProblem(await h.api(`/v1/users/${encodeURIComponent('a#b')}/devices`), 400, 'invalid-request', 'user')
  })

  test('POST /v1/tokens bad input → 400 naming the field', async () => {
    const token = (body: unknown): Promise<Res> => h.api('/v1/tokens', { body })
    assertProblem(await token({}), 400, 'invalid-request', 'user')
    assertProblem(await token({ user: 42 }), 400, 'invalid-request', 'user')
    assertProblem(await token({ user: 'a/b' }), 400, 'invalid-request', 'user')
    assertProblem(await token({ user: '#' }), 400, 'invalid-request', 'user')
    assertProblem(await token({ user: 'x'.repeat(129) }), 400, 'invalid-request', 'user')
    for (const ttl of [0, -5, 1.5, 30 * 24 * 3600 + 1, '3600']) {
      assertProblem(await token({ user: 'a', ttl }), 400, 'invalid-request', 'ttl')
    }
    assertProblem(await token({ user: 'a', scope: 'admin' }), 400, 'invalid-request', 'scope')
    assertProblem(await token(['a']), 400, 'invalid-request', '(body)')
    assertProblem(await h.api('/v1/tokens', { body: '{"user":' }), 400, 'invalid-json')
    const wrongType = await raw('/v1/tokens', {
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'text/plain' }, body: 'user=a'
    })
    assertProblem(wrongType, 415, 'unsupported-media-type')
    assertProblem(await raw('/v1/tokens', { headers: { 'content-type': 'application/json' }, body: '{"user":"a"}' }),
      401, 'unauthorized')
    const ok = await token({ user: 'a', ttl: 60 })
    assert.equal(ok.status, 201)
  })

  test('GET /healthz and GET /readyz answer 200 without any key', async () => {
    const health = await raw('/healthz', { method: 'GET' })
    assert.equal(health.status, 200)
    assert.equal(health.body.status, 'ok')
    const ready = await raw('/readyz', { method: 'GET' })
    assert.equal(ready.status, 200, JSON.stringify(ready.body))
    assert.equal(ready.body.status, 'ready')
  })
})

/** A request over node:http that sends the whole body even when the server answers early. */
function rawRequest (
  path: string, body: Buffer, headers: Record<string, string>
): Promise<{ status: number, text: string, contentType: string }> {
  return new Promise((resolve, reject) => {
    const url = new URL(h.url + path)
    const chunked = headers['transfer-encoding'] === 'chunked'
    const req = http.request({
      host: url.hostname,
      port: url.port,
      path: url.pathname,
      method: 'POST',
      headers: chunked ? headers : { ...headers, 'content-length': String(body.length) }
    }, res => {
      const chunks: Buffer[] = []
      res.on('data', c => chunks.push(c))
      res.on('end', () => resolve({
        status: res.statusCode ?? 0,
        text: Buffer.concat(chunks).toString(),
        contentType: String(res.headers['content-type'] ?? '')
      }))
      res.on('error', reject)
    })
    // the server may answer and close before the whole body is written
    req.on('error', err => { if (!(err as NodeJS.ErrnoException).code?.match(/EPIPE|ECONNRESET/)) reject(err) })
    if (chunked) {
      for (let i = 0; i < body.length; i += 64 * 1024) req.write(body.subarray(i, i + 64 * 1024))
      req.end()
    } else req.end(body)
  })
}

describe('a connection that never sends a request', () => {
  test('does not hold up a graceful stop', async () => {
    const own = await startTestHerald()
    const silent = net.connect(Number(new URL(own.url).port), '127.0.0.1')
    silent.on('error', () => {})
    await new Promise(resolve => silent.once('connect', resolve))
    try {
      const started = Date.now()
      let timer: NodeJS.Timeout | undefined
      await Promise.race([
        own.stop(),
        new Promise((_resolve, reject) => {
          timer = setTimeout(() => reject(new Error('stop still waiting after 8 s')), 8_000)
        })
      ]).finally(() => clearTimeout(timer))
      assert.ok(Date.now() - started < 8_000)
    } finally {
      silent.destroy()
      await own.stop()
    }
  })
})

describe('a batch of topic messages reaching too many devices', () => {
  test('is refused whole with 400 before anything is queued; a smaller batch goes through', async () => {
    // the real limit is 100,000 devices; this server's is 3, so three subscribed devices reach it
    const own = await startTestHerald({ deps: { maxBatchTopicDeliveries: 3 } })
    const devices = await Promise.all(['a', 'b'].map(async u => {
      const d = await connectDevice(own.wsUrl,
        { clientId: `big-${u}`, password: await own.token(`big-${u}`), clean: false })
      await d.client.subscribeAsync('topics/big', { qos: 1 })
      return d
    }))
    try {
      const two = { messages: [{ to: { topic: 'big' }, body: '1' }, { to: { topic: 'big' }, body: '2' }] }
      const refused = await own.api('/v1/messages/batch', { body: two })
      assertProblem(refused, 400, 'invalid-request', 'messages')
      assert.match(refused.body.detail, /would be queued for 4 devices; a batch may queue at most 3/)
      const one = await own.api('/v1/messages/batch', { body: { messages: two.messages.slice(0, 1) } })
      assert.equal(one.status, 202, JSON.stringify(one.body))
      assert.equal(one.body.messages[0].recipients, 2)
      for (const d of devices) {
        const [got] = await d.waitFor(1)
        assert.equal(got.payload.id, one.body.messages[0].id, 'the refused batch queued nothing before it')
      }
    } finally {
      await Promise.all(devices.map(d => d.close()))
      await own.stop()
    }
  })
})
