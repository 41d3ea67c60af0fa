// The backend client (sdk/backend, issue 11) against a real Herald on a real Postgres: every call
// answers as the spec says, problems become HeraldError, and retries are real failures: the
// database cut (503 + Retry-After), an answer lost after Herald committed (the connection is cut
// as the 202 comes back), nothing listening. A retried send is stored once.
import { test, after, before } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import net from 'node:net'
import {
  Herald, HeraldConnectionError, HeraldError, type HeraldOptions, type RetryInfo
} from '../sdk/backend/src/index.js'
import { ADMIN_PASSWORD, API_KEY, connectDevice, startTestHerald, type TestHerald } from './helpers/herald.js'
import { createTestDatabase, type TestDatabase } from './helpers/db.js'
import { proxyDatabase, type TcpProxy } from './helpers/tcpProxy.js'
import { offlineDevice, waitUntil } from './helpers/delivery.js'
import { createPool, type Pool } from '../server/db/pool.js'

let db: TestDatabase
let dbProxy: TcpProxy
let pool: Pool
let h: TestHerald
let lossy: AnswerDropper

before(async () => {
  db = await createTestDatabase()
  const proxied = await proxyDatabase(db.url)
  dbProxy = proxied.proxy
  pool = createPool({ connectionString: proxied.url })
  h = await startTestHerald({ db, env: { DATABASE_URL: proxied.url }, deps: { pool } })
  lossy = await startAnswerDropper(Number(new URL(h.url).port))
})

after(async () => {
  dbProxy?.restore()
  await lossy?.close()
  await h?.stop()
  await dbProxy?.close()
  await db?.drop()
})

const client = (options: Partial<HeraldOptions> = {}): Herald =>
  new Herald({ baseUrl: h.url, apiKey: API_KEY, adminPassword: ADMIN_PASSWORD, ...options })

async function storedWithTitle (title: string): Promise<number> {
  const { rows } = await db.pool.query<{ n: number }>(
    'select count(*)::int as n from messages where title = $1', [title])
  return rows[0]!.n
}

async function rejection (promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise
  } catch (err) {
    return err
  }
  assert.fail('expected the call to fail')
}

test('tokens.create gives a token that connects; send reaches it; get, devices, batch, revoke, end', async () => {
  const herald = client()
  const { token, expiresAt } = await herald.tokens.create({ user: 'ada', ttl: 600 })
  assert.ok(Date.parse(expiresAt) > Date.now())
  const phone = await connectDevice(h.wsUrl, { clientId: 'ada-phone', password: token })
  try {
    await phone.client.subscribeAsync('users/ada/inbox', { qos: 1 })
    const sent = await herald.messages.send({ to: { user: 'ada' }, title: 'Shipped', data: { orderId: 7 } })
    assert.equal(sent.recipients, 1)
    const [received] = await phone.waitFor(1)
    assert.equal(received!.payload.id, sent.id)
    assert.deepEqual(received!.payload.data, { orderId: 7 })

    const message = await herald.messages.get(sent.id)
    assert.equal(message.title, 'Shipped')
    assert.deepEqual(message.deliveries.map(d => d.deviceId), ['ada-phone'])

    const devices = await herald.devices.list('ada')
    assert.deepEqual(devices.map(d => [d.deviceId, d.online]), [['ada-phone', true]])

    const batch = await herald.messages.batch([
      { to: { user: 'ada' }, title: 'one' }, { to: { user: 'nobody' }, body: 'two' }])
    assert.deepEqual(batch.messages.map(m => m.recipients), [1, 0])
    await phone.waitFor(2)

    const ended = await herald.devices.end('ada-phone')
    assert.deepEqual([ended.deviceId, ended.disconnected], ['ada-phone', true])
    // a message for a device that is offline: revoked before it is ever sent
    await offlineDevice(h, 'ada', 'ada-tablet')
    const later = await herald.messages.send({ to: { user: 'ada' }, body: 'for the tablet' })
    assert.deepEqual(await herald.messages.revoke(later.id), { id: later.id, revoked: 1 })
    assert.deepEqual(await herald.messages.revoke(later.id), { id: later.id, revoked: 0 })
    assert.equal((await herald.messages.get(later.id)).deliveries[0]!.status, 'revoked')
  } finally {
    await phone.close()
  }
})

test('list iterates the delivery log newest first, page after page along nextCursor', async () => {
  const herald = client()
  await offlineDevice(h, 'paige', 'paige-phone')
  const titles = ['p1', 'p2', 'p3', 'p4', 'p5']
  await herald.messages.batch(titles.map(title => ({ to: { user: 'paige' }, title })))

  const entries = []
  for await (const entry of herald.messages.list({ user: 'paige', limit: 2 })) entries.push(entry)
  // a batch reads last item first
  assert.deepEqual(entries.map(e => e.title), [...titles].reverse())

  const pages = []
  for await (const page of herald.messages.list({ user: 'paige', limit: 2 }).pages()) pages.push(page.items.length)
  assert.deepEqual(pages, [2, 2, 1])

  const statuses = []
  for await (const entry of herald.messages.list({ user: 'paige', status: 'delivered' })) statuses.push(entry)
  assert.deepEqual(statuses, [])
})

test('problems become HeraldError with status, code, title, detail and every wrong field', async () => {
  const herald = client()
  const invalid = await rejection(herald.messages.send({ to: { user: 'a/b' }, title: 'x', ttl: -1 }))
  assert.ok(invalid instanceof HeraldError)
  assert.equal(invalid.status, 400)
  assert.equal(invalid.code, 'invalid-request')
  assert.equal(invalid.title, 'Request is invalid')
  assert.deepEqual(invalid.fields.map(f => f.field).sort(), ['to.user', 'ttl'])
  assert.match(invalid.detail, /to\.user/)

  const missing = await rejection(herald.messages.get('00000000-0000-4000-8000-000000000000'))
  assert.ok(missing instanceof HeraldError)
  assert.deepEqual([missing.status, missing.code, missing.fields], [404, 'not-found', []])

  const wrongKey = await rejection(client({ apiKey: 'hk_not_a_key_of_this_server_000000000000' }).devices.list('ada'))
  assert.ok(wrongKey instanceof HeraldError)
  assert.deepEqual([wrongKey.status, wrongKey.code], [401, 'unauthorized'])

  const noAdmin = await rejection(client({ adminPassword: undefined }).apiKeys.list())
  assert.ok(noAdmin instanceof TypeError, 'refused before any request: no admin password given')
  const wrongAdmin = await rejection(client({ adminPassword: 'not the admin password' }).apiKeys.list())
  assert.ok(wrongAdmin instanceof HeraldError)
  assert.equal(wrongAdmin.code, 'unauthorized')
})

test('a caller\'s Idempotency-Key is honoured: a repeat gets the first answer, another body is refused', async () => {
  const herald = client()
  const idempotencyKey = 'order-1234-shipped'
  const first = await herald.messages.send({ to: { user: 'ida' }, title: 'idempotent' }, { idempotencyKey })
  const again = await herald.messages.send({ to: { user: 'ida' }, title: 'idempotent' }, { idempotencyKey })
  assert.deepEqual(again, first)
  assert.equal(await storedWithTitle('idempotent'), 1)

  const reused = await rejection(herald.messages.send({ to: { user: 'ida' }, title: 'other' }, { idempotencyKey }))
  assert.ok(reused instanceof HeraldError)
  assert.deepEqual([reused.status, reused.code], [422, 'idempotency-key-reused'])
  assert.equal(await storedWithTitle('other'), 0)
})

test('API keys with the admin password: create, list, revoke', async () => {
  const herald = client()
  const created = await herald.apiKeys.create({ name: 'billing' })
  assert.match(created.key, /^hk_/)
  const sender = client({ apiKey: created.key })
  assert.equal((await sender.messages.send({ to: { user: 'kim' }, body: 'with the new key' })).recipients, 0)
  assert.ok((await herald.apiKeys.list()).some(k => k.id === created.id && k.revokedAt === null))
  const revoked = await herald.apiKeys.revoke(created.id)
  assert.ok(revoked.revokedAt !== null)
})

test('webhooks: create (secret shown once), list, get, deliveries, replay, enable, delete', async () => {
  // a real receiver that refuses every batch, so its deliveries stay pending and can be replayed
  const received: string[] = []
  const receiver = http.createServer((req, res) => {
    received.push(String(req.headers['webhook-id']))
    res.statusCode = 503
    res.end()
  })
  await new Promise<void>(resolve => receiver.listen(0, '127.0.0.1', resolve))
  try {
    const herald = client()
    const url = `http://127.0.0.1:${(receiver.address() as net.AddressInfo).port}/hooks`
    const created = await herald.webhooks.create({ url, events: ['device.online'], description: 'test' })
    assert.match(created.secret, /^whsec_/)
    assert.equal(created.status, 'enabled')
    assert.ok((await herald.webhooks.list()).some(w => w.id === created.id && !('secret' in w)))
    assert.equal((await herald.webhooks.get(created.id)).url, url)

    const phone = await connectDevice(h.wsUrl, { clientId: 'hook-phone', password: await h.token('hook') })
    await phone.close()
    const [delivery] = await waitUntil('a delivery of device.online', async () => {
      const found = await herald.webhooks.deliveries(created.id, { status: 'pending' })
      return found.length > 0 && found[0]!.attempts > 0 ? found : undefined
    })
    assert.ok(received.includes(delivery!.id), 'the receiver was sent it, with its webhook-id')
    assert.deepEqual(await herald.webhooks.replay(created.id, delivery!.id), { id: delivery!.id, status: 'pending' })
    assert.equal((await herald.webhooks.enable(created.id)).status, 'enabled')

    await herald.webhooks.delete(created.id)
    const gone = await rejection(herald.webhooks.get(created.id))
    assert.ok(gone instanceof HeraldError)
    assert.equal(gone.code, 'not-found')
  } finally {
    await new Promise(resolve => receiver.close(resolve))
  }
})

/**
 * Cuts the database and waits until Herald's pool has dropped its idle connections. A pool client
 * handed out from idle the moment its connection closes has no 'error' listener, an uncaught
 * exception in Herald's process (pg-pool; reported, server/db/pool.ts): this test is about the
 * client, so nothing is asked of Herald in that window.
 */
async function cutDatabase (): Promise<void> {
  dbProxy.cut()
  await waitUntil('Herald\'s pool to drop its cut connections', async () => pool.idleCount === 0)
}

test('while the database is cut (503 database-unavailable, Retry-After: 5)', async t => {
  await client().messages.send({ to: { user: 'rita' }, title: 'warm-up' }) // the API key is cached from here on
  await cutDatabase()
  after(() => dbProxy.restore())

  await t.test('Retry-After is the wait by default; a caller\'s signal ends the wait at once', async () => {
    const controller = new AbortController()
    const planned: number[] = []
    const herald = client({ onRetry: info => { planned.push(info.delayMs); controller.abort() } })
    const started = Date.now()
    const err = await rejection(herald.messages.send({ to: { user: 'rita' }, title: 'aborted' },
      { signal: controller.signal }))
    assert.ok(err instanceof DOMException && err.name === 'AbortError', String(err))
    assert.deepEqual(planned, [5_000])
    assert.ok(Date.now() - started < 2_000, 'the wait ended with the signal')
  })

  await t.test('a Retry-After past the call\'s timeout fails at once with the 503', async () => {
    const retried: RetryInfo[] = []
    const started = Date.now()
    const herald = client({ timeoutMs: 3_000, onRetry: info => { retried.push(info) } })
    const early = await rejection(herald.messages.send({ to: { user: 'rita' }, title: 'x' }))
    assert.ok(early instanceof HeraldError)
    assert.deepEqual([early.status, early.code, early.retryAfter], [503, 'database-unavailable', 5])
    assert.equal(retried.length, 0)
    assert.ok(Date.now() - started < 2_500, 'did not wait for a retry that could not be made')
  })

  await t.test('retries are bounded', async () => {
    const retried: RetryInfo[] = []
    const herald = client({ retries: 2, maxRetryDelayMs: 1, onRetry: info => { retried.push(info) } })
    const bounded = await rejection(herald.devices.list('rita'))
    assert.ok(bounded instanceof HeraldError)
    assert.equal(bounded.code, 'database-unavailable')
    assert.deepEqual(retried.map(r => r.retry), [1, 2])
  })

  await t.test('a send is retried until the database returns, and stored once', async () => {
    const retries: RetryInfo[] = []
    // capped so the test does not wait the 5 s the server asks for
    const herald = client({
      maxRetryDelayMs: 20,
      onRetry: info => {
        retries.push(info)
        if (retries.length === 2) dbProxy.restore()
      }
    })
    const sent = await herald.messages.send({ to: { user: 'rita' }, title: 'through the outage' })
    assert.equal(retries.length, 2)
    for (const r of retries) {
      assert.ok(r.error instanceof HeraldError)
      assert.deepEqual([r.error.status, r.error.code, r.error.retryAfter], [503, 'database-unavailable', 5])
      assert.equal(r.delayMs, 20)
      assert.equal(r.request, 'POST /v1/messages')
    }
    assert.equal((await herald.messages.get(sent.id)).title, 'through the outage')
    assert.equal(await storedWithTitle('through the outage'), 1)
  })
})

test('timeoutMs ends a call whose answer does not come (database partitioned)', async () => {
  await client().messages.send({ to: { user: 'rita' }, title: 'warm-up' })
  dbProxy.blackhole()
  try {
    const started = Date.now()
    const err = await rejection(client({ timeoutMs: 300 }).messages.send({ to: { user: 'rita' }, title: 'hung' }))
    assert.ok(err instanceof DOMException && err.name === 'TimeoutError', String(err))
    assert.ok(Date.now() - started < 2_000)
  } finally {
    dbProxy.restore()
  }
})

test('an answer lost after Herald committed: the send is retried with the same key and stored once', async () => {
  const retried: RetryInfo[] = []
  const herald = client({ baseUrl: lossy.url, retryDelayMs: 1, onRetry: info => { retried.push(info) } })
  lossy.dropNextAnswer()
  const sent = await herald.messages.send({ to: { user: 'lou' }, title: 'lost answer' })
  assert.equal(lossy.dropped, 1)
  assert.equal(retried.length, 1)
  assert.ok(retried[0]!.error instanceof HeraldConnectionError)
  assert.equal(await storedWithTitle('lost answer'), 1)
  assert.equal((await herald.messages.get(sent.id)).title, 'lost answer', 'the answer is the first attempt\'s')

  lossy.dropNextAnswer()
  const batch = await herald.messages.batch([{ to: { user: 'lou' }, title: 'lost batch' }])
  assert.equal(lossy.dropped, 2)
  assert.equal(await storedWithTitle('lost batch'), 1)
  assert.equal((await herald.messages.get(batch.messages[0]!.id)).title, 'lost batch')
})

test('an API key creation whose answer is lost is not retried: a retry would make a second key', async () => {
  const retried: RetryInfo[] = []
  const herald = client({ baseUrl: lossy.url, retryDelayMs: 1, onRetry: info => { retried.push(info) } })
  lossy.dropNextAnswer()
  const err = await rejection(herald.apiKeys.create({ name: 'lost-key' }))
  assert.ok(err instanceof HeraldConnectionError, String(err))
  assert.equal(retried.length, 0)
  const keys = await client().apiKeys.list()
  assert.equal(keys.filter(k => k.name === 'lost-key').length, 1, 'the first request did create it')
})

test('nothing listening: any call is retried (the request never left), then HeraldConnectionError', async () => {
  const closed = net.createServer()
  await new Promise<void>(resolve => closed.listen(0, '127.0.0.1', resolve))
  const port = (closed.address() as net.AddressInfo).port
  await new Promise(resolve => closed.close(resolve))
  const retried: RetryInfo[] = []
  const herald = client({ baseUrl: `http://127.0.0.1:${port}`, retries: 2, retryDelayMs: 1, onRetry: i => { retried.push(i) } })
  const err = await rejection(herald.apiKeys.create({ name: 'never' }))
  assert.ok(err instanceof HeraldConnectionError)
  assert.match(err.message, /ECONNREFUSED/)
  assert.equal(retried.length, 2)
})

interface AnswerDropper {
  url: string
  /** the next answer to come back through the proxy is not passed on: its connection is cut instead */
  dropNextAnswer: () => void
  readonly dropped: number
  close: () => Promise<void>
}

/**
 * A TCP proxy in front of Herald that can lose an answer: the request reaches Herald, Herald
 * commits and answers, and the client's connection is cut as the answer's first bytes arrive.
 */
async function startAnswerDropper (port: number): Promise<AnswerDropper> {
  let dropNext = false
  let dropped = 0
  const sockets = new Set<net.Socket>()
  const server = net.createServer(client => {
    const upstream = net.connect(port, '127.0.0.1')
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.on('error', () => {})
      s.on('close', () => { sockets.delete(s); client.destroy(); upstream.destroy() })
    }
    client.pipe(upstream)
    upstream.on('data', chunk => {
      if (dropNext) {
        dropNext = false
        dropped++
        client.destroy()
        return
      }
      client.write(chunk)
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    dropNextAnswer: () => { dropNext = true },
    get dropped () { return dropped },
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise(resolve => server.close(resolve))
    }
  }
}
