// REST hardening: one client's bad input never fails another's send, bodies nested or sized to
// hurt are refused early, request targets that do not decode are a 400, half-open connections
// are dropped. Each test is a reproduction that failed before the fix (see the issue).
import { test, after, before, describe } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import pg from 'pg'
import { startTestHerald, connectDevice, ADMIN_PASSWORD, API_KEY, type TestHerald } from './helpers/herald.js'
import { HTTP_TIMEOUTS } from '../server/app.js'
import { MAX_DATA_DEPTH } from '../server/delivery/message.js'

let h: TestHerald
before(async () => { h = await startTestHerald() })
after(async () => { await h.stop() })

type Res = { status: number, body: any, headers: Headers }

function assertProblem (res: Res, status: number, field?: string | RegExp): void {
  const context = JSON.stringify(res.body).slice(0, 600)
  assert.equal(res.status, status, context)
  assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/, context)
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff')
  if (field === undefined) return
  const fields: string[] = (res.body.errors ?? []).map((e: { field: string }) => e.field)
  const named = typeof field === 'string' ? fields.includes(field) : fields.some(f => field.test(f))
  assert.ok(named, `expected ${field} among errors[].field: ${context}`)
}

interface Init { method?: string, body?: string, headers?: Record<string, string> }

async function request (path: string, init: Init = {}): Promise<Res> {
  const type: Record<string, string> = init.body === undefined ? {} : { 'content-type': 'application/json' }
  const res = await fetch(h.url + path, {
    method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
    headers: { authorization: `Bearer ${API_KEY}`, ...type, ...init.headers },
    body: init.body
  })
  const text = await res.text()
  let body: unknown = text
  try { body = JSON.parse(text) } catch {}
  return { status: res.status, body, headers: res.headers }
}

/** POST of a raw JSON text */
const post = (path: string, body: string, headers: Record<string, string> = {}): Promise<Res> =>
  request(path, { body, headers })
const valid = (i: number): string => JSON.stringify({ to: { user: `hardening-${i % 7}` }, title: `valid ${i}` })

describe('a bad send beside valid ones', () => {
  // what the issue measured: 62 of 120 valid sends failed with the one bad send beside them
  const BAD: Array<[string, string]> = [
    [JSON.stringify({ to: { user: 'a' }, title: 'nul \u0000 inside' }), 'title'],
    [JSON.stringify({ to: { user: 'a' }, body: 'nul \u0000' }), 'body'],
    [JSON.stringify({ to: { user: 'a' }, title: 'x', collapseKey: 'k\u0000' }), 'collapseKey'],
    [JSON.stringify({ to: { user: 'a' }, data: { k: 'v\u0000' } }), 'data.k'],
    [JSON.stringify({ to: { user: 'a' }, data: { 'k\u0000': 1 } }), 'data["k\\u0000"]'],
    ['{"to":{"user":"a"},"title":"half \\ud800 a pair"}', 'title'],
    ['{"to":{"user":"a"},"data":{"list":[1,"\\udc00"]}}', 'data.list[1]'],
    ['{"to":{"user":"\\ud800"},"title":"x"}', 'to.user'],
    ['{"to":{"topic":"news\\udfff"},"title":"x"}', 'to.topic']
  ]

  test('120 concurrent valid sends all get 202; each bad one gets 400 naming its field (3 rounds)', async () => {
    for (let round = 0; round < 3; round++) {
      const sends = Array.from({ length: 120 }, (_, i) => request('/v1/messages', { body: valid(i) }))
      // the bad ones in the middle of the crowd, so that they share group commits with valid ones
      const bad = BAD.map(([body]) => request('/v1/messages', { body }))
      const after = Array.from({ length: 20 }, (_, i) => request('/v1/messages', { body: valid(i) }))
      const [good, refused, later] = await Promise.all([Promise.all(sends), Promise.all(bad), Promise.all(after)])
      for (const res of [...good, ...later]) assert.equal(res.status, 202, JSON.stringify(res.body))
      refused.forEach((res, i) => assertProblem(res, 400, BAD[i][1]))
    }
  })

  test('the same in a batch: the item is named', async () => {
    const ok = { to: { user: 'a' }, title: 'ok' }
    const messages = [ok, ok, { to: { user: 'a' }, body: 'x\u0000' }]
    assertProblem(await request('/v1/messages/batch', { body: JSON.stringify({ messages }) }), 400, 'messages[2].body')
  })

  test('an API key name holding U+0000 → 400 naming name', async () => {
    const admin = { authorization: `Basic ${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64')}` }
    assertProblem(await post('/v1/api-keys', JSON.stringify({ name: 'a\u0000b' }), admin), 400, 'name')
  })
})

describe('a value the database refuses past validation', () => {
  // Postgres itself refuses these rows: a trigger on this test's own database stands for a value
  // validation missed. It also counts, outside any transaction (sequences are not rolled back),
  // every refused group that had other messages in it, to prove the refusal hit a shared commit.
  before(async () => {
    await h.db.pool.query(`
      create sequence poison_shared_groups;
      create function refuse_poison () returns trigger language plpgsql as $$
      declare
        culprit text;
        size bigint;
      begin
        select title, (select count(*) from inserted) into culprit, size
          from inserted where title like 'poison-%' limit 1;
        if culprit is null then return null; end if;
        if size > 1 then perform nextval('poison_shared_groups'); end if;
        if culprit = 'poison-data' then
          raise exception 'value refused' using errcode = 'character_not_in_repertoire';
        end if;
        raise exception 'refused by a trigger';
      end $$;
      create trigger refuse_poison after insert on messages referencing new table as inserted
        for each statement execute function refuse_poison();`)
  })
  after(async () => {
    await h.db.pool.query(`drop trigger refuse_poison on messages; drop function refuse_poison();
      drop sequence poison_shared_groups`)
  })

  test('only the culprit fails (400 for a data exception, 500 otherwise); all beside it commit', async () => {
    // hold the accept lock so that the sends queue up and commit as one group behind it
    const lock = new pg.Client({ connectionString: h.db.url })
    await lock.connect()
    try {
      await lock.query('select pg_advisory_lock($1)', [0x4865_7262])
      const sends = Array.from({ length: 60 }, (_, i) => request('/v1/messages', { body: valid(i) }))
      const data = request('/v1/messages', { body: JSON.stringify({ to: { user: 'p' }, title: 'poison-data' }) })
      const other = request('/v1/messages', { body: JSON.stringify({ to: { user: 'p' }, title: 'poison-other' }) })
      const more = Array.from({ length: 60 }, (_, i) => request('/v1/messages', { body: valid(i) }))
      // an accept transaction waits for the lock: the others are queued behind it
      for (;;) {
        const { rows } = await lock.query("select 1 from pg_locks where locktype = 'advisory' and not granted")
        if (rows.length > 0) break
      }
      await lock.query('select pg_advisory_unlock($1)', [0x4865_7262])
      const [good, refusedData, refusedOther, good2] =
        await Promise.all([Promise.all(sends), data, other, Promise.all(more)])
      for (const res of [...good, ...good2]) assert.equal(res.status, 202, JSON.stringify(res.body))
      assertProblem(refusedData, 400)
      assert.match(refusedData.body.detail, /value refused/)
      assertProblem(refusedOther, 500)
      const ids = [...good, ...good2].map(r => r.body.id)
      const { rows } = await h.db.pool.query(
        'select count(*)::int as n from messages where id = any($1::uuid[])', [ids])
      assert.equal(rows[0].n, 120, 'every valid message is committed')
      const shared = await h.db.pool.query('select last_value, is_called from poison_shared_groups')
      assert.ok(shared.rows[0].is_called, 'a poisoned group had other messages in it')
    } finally {
      await lock.end()
    }
  })
})

describe('deeply nested JSON', () => {
  const nest = (levels: number, inner = '1'): string => {
    let json = inner
    for (let i = 0; i < levels; i++) json = `{"a":${json}}`
    return json
  }

  test(`data nested ${MAX_DATA_DEPTH} levels is accepted; one more, or 10,000, is a 400 naming the path`, async () => {
    const ok = await request('/v1/messages', { body: `{"to":{"user":"a"},"data":${nest(MAX_DATA_DEPTH)}}` })
    assert.equal(ok.status, 202, JSON.stringify(ok.body))
    const cut = `data${'.a'.repeat(MAX_DATA_DEPTH)}`
    assertProblem(await post('/v1/messages', `{"to":{"user":"a"},"data":${nest(MAX_DATA_DEPTH + 1)}}`), 400, cut)
    for (const key of [undefined, 'deep-1']) {
      const res = await post('/v1/messages', `{"to":{"user":"a"},"data":${nest(10_000)}}`,
        key ? { 'idempotency-key': key } : {})
      assertProblem(res, 400, cut)
    }
  })

  test('arrays nested 300,000 levels in a batch, with an Idempotency-Key → 400 naming the item', async () => {
    const deep = '['.repeat(300_000) + ']'.repeat(300_000)
    const res = await post('/v1/messages/batch', `{"messages":[{"to":{"user":"a"},"title":"x"},${deep}]}`,
      { 'idempotency-key': 'd2' })
    assertProblem(res, 400, 'messages[1]')
    const data = await post('/v1/messages/batch', `{"messages":[{"to":{"user":"a"},"data":{"x":${deep}}}]}`,
      { 'idempotency-key': 'd3' })
    assertProblem(data, 400, /^messages\[0\]\.data\.x(\[0\])+$/)
  })

  test('a deeply nested value where a number or string belongs → 400 naming it', async () => {
    const deep = '['.repeat(50_000) + ']'.repeat(50_000)
    assertProblem(await post('/v1/messages', `{"to":{"user":"a"},"title":"x","ttl":${deep},"priority":${deep}}`),
      400, 'ttl')
    assertProblem(await post('/v1/messages', `{"to":{"user":"a"},"title":"x","nope":${deep}}`), 400, 'nope')
  })
})

describe('request targets that do not decode', () => {
  let session: { cookie: string, csrf: string }
  before(async () => {
    const res = await fetch(`${h.url}/admin/api/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user: 'admin', password: ADMIN_PASSWORD })
    })
    assert.equal(res.status, 200)
    session = { cookie: res.headers.get('set-cookie')!.split(';')[0], csrf: (await res.json()).csrfToken }
  })

  const cases: Array<[string, string, string]> = [
    ['GET', '/v1/messages?user=a%00b', 'user'],
    ['GET', '/v1/messages?device=%00', 'device'],
    ['GET', '/v1/messages?user=%FF', 'user'],
    ['GET', '/v1/messages?status=%E0%A4%A', 'status'],
    ['GET', '/v1/messages?%FF=1', 'query'],
    ['DELETE', '/v1/devices/%00', 'deviceId'],
    ['DELETE', '/v1/devices/%FF', 'path'],
    ['GET', '/v1/messages/%E0%A4%A', 'path'],
    ['GET', '/v1/messages/%FF', 'path'],
    ['DELETE', '/v1/messages/%FF', 'path'],
    ['GET', '/v1/users/%00/devices', 'user'],
    ['GET', '/v1/users/%FF/devices', 'path'],
    ['POST', '/v1/messages?x=%FF', 'x'],
    ['POST', '/v1/messages/%FF', 'path'],
    ['GET', '/admin/api/log?user=%00', 'user'],
    ['GET', '/admin/api/log?text=a%00', 'text'],
    ['GET', '/admin/api/log?device=%FF', 'device'],
    ['GET', '/admin/api/users?prefix=%00', 'prefix'],
    ['GET', '/admin/api/messages/%FF', 'path'],
    ['GET', '/admin/api/users/%00/devices', 'user'],
    ['DELETE', '/admin/api/devices/%00', 'deviceId'],
    ['GET', '/admin/api/events?watch=%00', 'watch'],
    ['GET', '/admin/%FF', 'path']
  ]
  for (const [method, path, field] of cases) {
    test(`${method} ${path} → 400 naming ${field}`, async () => {
      const res = await request(path, { method, headers: { cookie: session.cookie, 'x-herald-csrf': session.csrf } })
      assertProblem(res, 400, field)
    })
  }
  test('GET /v1/api-keys/%FF with admin credentials → 400 naming path', async () => {
    const admin = { authorization: `Basic ${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64')}` }
    assertProblem(await request('/v1/api-keys/%FF', { method: 'DELETE', headers: admin }), 400, 'path')
  })
})

/** What a raw connection got back, and whether the server closed it. */
interface RawOutcome { response: string, closedByServer: boolean, written: number, ms: number }

/**
 * Sends `head`, then `chunk` over and over (while `keepSending`) until the server closes the
 * connection or `timeoutMs` passes.
 */
function rawExchange (port: number, head: string, chunk: Buffer | undefined, timeoutMs: number): Promise<RawOutcome> {
  return new Promise(resolve => {
    const started = Date.now()
    const socket = net.connect(port, '127.0.0.1')
    let response = ''
    let written = 0
    let finished = false
    const finish = (closedByServer: boolean): void => {
      if (finished) return
      finished = true
      clearTimeout(timer)
      socket.destroy()
      resolve({ response, closedByServer, written, ms: Date.now() - started })
    }
    const timer = setTimeout(() => finish(false), timeoutMs)
    socket.on('data', data => { response += data.toString() })
    socket.on('end', () => finish(true))
    socket.on('close', () => finish(true))
    socket.on('error', () => finish(true))
    const pump = (): void => {
      if (chunk === undefined) return
      while (written < 512 * 1024 * 1024) {
        if (finished) return // finish() may have run (from the socket's events) before a drain
        written += chunk.length
        if (!socket.write(chunk)) {
          socket.once('drain', pump)
          return
        }
      }
    }
    socket.write(head, pump)
  })
}

describe('oversized bodies', () => {
  const port = (): number => Number(new URL(h.url).port)
  const routes: Array<[string, string]> = [
    ['/v1/messages', `Authorization: Bearer ${API_KEY}`],
    ['/v1/messages/batch', `Authorization: Bearer ${API_KEY}`],
    ['/v1/tokens', `Authorization: Bearer ${API_KEY}`],
    ['/admin/api/login', 'X-Nothing: 1']
  ]

  for (const [path, auth] of routes) {
    test(`POST ${path} announcing 100 MB and sending 1 KB → 413 at once, connection closed`, async () => {
      const head = `POST ${path} HTTP/1.1\r\nHost: x\r\n${auth}\r\n` +
        `Content-Type: application/json\r\nContent-Length: 104857600\r\n\r\n${'x'.repeat(1024)}`
      const got = await rawExchange(port(), head, undefined, 5_000)
      assert.match(got.response, /^HTTP\/1\.1 413 /, got.response)
      assert.match(got.response, /connection: close/i)
      assert.match(got.response, /application\/problem\+json/)
      assert.ok(got.closedByServer, 'the server closed the connection')
    })

    test(`POST ${path} streaming a chunked body without end → 413 once past the limit, connection closed`, async () => {
      const head = `POST ${path} HTTP/1.1\r\nHost: x\r\n${auth}\r\n` +
        'Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n'
      const data = Buffer.alloc(64 * 1024, 'x')
      const chunk = Buffer.concat([Buffer.from(`${data.length.toString(16)}\r\n`), data, Buffer.from('\r\n')])
      const got = await rawExchange(port(), head, chunk, 10_000)
      assert.match(got.response, /^HTTP\/1\.1 413 /, got.response.slice(0, 300))
      assert.ok(got.closedByServer, 'the server closed the connection')
      // the limit is at most 2 MiB; what the kernel buffers on both sides comes on top
      assert.ok(got.written < 64 * 1024 * 1024, `the server stopped reading (${got.written} bytes written)`)
    })
  }

  test('the server still takes sends afterwards', async () => {
    assert.equal((await request('/v1/messages', { body: valid(1) })).status, 202)
  })
})

describe('every JSON answer says nosniff', () => {
  test('sends, reads, problems, health, admin', async () => {
    const answers = await Promise.all([
      request('/v1/messages', { body: valid(2) }),
      request('/v1/messages', { body: '{}' }),
      request('/v1/messages?limit=1'),
      request('/v1/nothing'),
      request('/healthz'),
      request('/admin/api/overview')
    ])
    for (const res of answers) {
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff', `${res.status} ${JSON.stringify(res.body)}`)
    }
  })
})

describe('half-open connections', () => {
  test('the HTTP server has header and request timeouts', () => {
    assert.equal(h.herald.http.headersTimeout, HTTP_TIMEOUTS.headersMs)
    assert.equal(h.herald.http.requestTimeout, HTTP_TIMEOUTS.requestMs)
  })

  test('trickled headers and bodies are dropped; an idle MQTT device over WebSocket stays', async () => {
    const own = await startTestHerald({ deps: { httpTimeouts: { headersMs: 1_000, requestMs: 2_000 } } })
    const device = await connectDevice(own.wsUrl,
      { clientId: 'idle-phone', password: await own.token('idle-user'), clean: false, keepalive: 60 })
    try {
      const port = Number(new URL(own.url).port)
      const trickle = (head: string, line: string, count: number): Promise<RawOutcome> => new Promise(resolve => {
        const socket = net.connect(port, '127.0.0.1')
        const started = Date.now()
        let response = ''
        let sent = 0
        const timer = setInterval(() => { if (sent++ < count) socket.write(line) }, 300)
        socket.on('data', d => { response += d.toString() })
        socket.on('error', () => {})
        socket.on('close', () => {
          clearInterval(timer)
          resolve({ response, closedByServer: sent < count, written: sent, ms: Date.now() - started })
        })
        socket.write(head)
      })
      const [upgrade, body] = await Promise.all([
        // a WebSocket upgrade that never finishes its headers
        trickle('GET /mqtt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n', 'X-Slow: 1\r\n', 100),
        // a send whose body never finishes
        trickle(`POST /v1/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${API_KEY}\r\n` +
          'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n', ' ', 100)
      ])
      assert.ok(upgrade.closedByServer && upgrade.ms < 4_000, `headers: closed after ${upgrade.ms} ms`)
      assert.ok(body.closedByServer && body.ms < 5_000, `body: closed after ${body.ms} ms`)
      // the device connected before both, so a sweep that dropped them would have dropped it too
      assert.ok(device.client.connected, 'the idle device is still connected')
      const sent = await own.api('/v1/messages', { body: { to: { user: 'idle-user' }, title: 'still here' } })
      assert.equal(sent.status, 202)
      const [got] = await device.waitFor(1)
      assert.equal(got.payload.id, sent.body.id)
    } finally {
      await device.close()
      await own.stop()
    }
  })
})
