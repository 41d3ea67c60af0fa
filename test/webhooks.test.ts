// Delivery webhooks (issue 11, part 3) against a real receiver: every event type arrives, signed
// so that the Standard Webhooks reference verifier accepts it; a receiver that is down for a while
// gets everything afterwards; one failing for the whole retry window is disabled and its batch
// can be replayed; slow and hostile receivers stall nothing; the routes refuse bad input.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { readdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import { Webhook } from 'standardwebhooks'
import YAML from 'yaml'
import Ajv2020 from 'ajv/dist/2020.js'
import addFormats from 'ajv-formats'
import { migrate } from '../server/db/migrate.js'
import type { Pool } from '../server/db/pool.js'
import { expireDue } from '../server/store/deliveries.js'
import {
  dueWebhookDelivery, formWebhookDelivery, insertWebhookEndpoint, pruneWebhooks, recordWebhookAttempt,
  type DueBatch
} from '../server/store/webhooks.js'
import { writePayload } from '../server/webhooks/payload.js'
import { createTestDatabase } from './helpers/db.js'
import { ROOT } from './helpers/process.js'
import {
  ADMIN_PASSWORD, connectDevice, startTestHerald, type TestDevice, type TestHerald
} from './helpers/herald.js'
import { answerOk, startWebhookReceiver, type ReceivedEvent, type WebhookReceiver } from './helpers/webhookReceiver.js'

const ADMIN = { authorization: `Basic ${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64')}` }
const ALL_EVENTS = [
  'message.delivered', 'message.displayed', 'message.opened', 'message.dismissed',
  'message.expired', 'message.replaced', 'message.revoked', 'device.online', 'device.offline'
]
// short enough to watch retries and the end of the retry window in a test
const RETRY_WINDOW_MS = 2_500

let h: TestHerald
const receivers: WebhookReceiver[] = []
const devices: TestDevice[] = []

before(async () => {
  h = await startTestHerald({
    deps: {
      webhooks: {
        pollMs: 50, firstRetryDelayMs: 100, maxRetryDelayMs: 400, retryWindowMs: RETRY_WINDOW_MS, timeoutMs: 1_000
      }
    }
  })
})

after(async () => {
  for (const d of devices) await d.close()
  await h?.stop()
  for (const r of receivers) await r.close()
})

async function receiver (): Promise<WebhookReceiver> {
  const r = await startWebhookReceiver()
  receivers.push(r)
  return r
}

const admin = (path: string, init: { method?: string, body?: unknown } = {}): ReturnType<TestHerald['api']> =>
  h.api(path, { ...init, headers: ADMIN })

/** Registers `r` for `events` and gives it the secret, as its operator would. */
async function register (r: WebhookReceiver, events = ALL_EVENTS): Promise<string> {
  const created = await admin('/v1/webhooks', { body: { url: r.url, events, description: 'test receiver' } })
  assert.equal(created.status, 201, JSON.stringify(created.body))
  r.secret = created.body.secret
  return created.body.id
}

async function device (user: string, clientId: string): Promise<TestDevice> {
  const d = await connectDevice(h.wsUrl, { clientId, password: await h.token(user), clean: false })
  devices.push(d)
  return d
}

const send = async (body: object): Promise<string> => {
  const r = await h.api('/v1/messages', { body })
  assert.equal(r.status, 202, JSON.stringify(r.body))
  return r.body.id
}

/** openapi.yaml's WebhookPayload schema, as a receiver generating its types from the document relies on. */
async function payloadValidator (): Promise<(body: unknown) => string | undefined> {
  const doc = YAML.parse(await readFile(new URL('../openapi.yaml', import.meta.url), 'utf8'))
  const id = 'https://herald.test/openapi/components.json'
  const schemas = JSON.parse(JSON.stringify(doc.components.schemas), (key, value) =>
    key === '$ref' && typeof value === 'string' ? value.replace('#/components/schemas/', `${id}#/$defs/`) : value)
  // ajv is CommonJS: under NodeNext the default import is module.exports, whose `default` is the class
  const Ajv = Ajv2020.default
  const ajv = new Ajv({ allErrors: true, allowUnionTypes: true })
  addFormats.default(ajv)
  ajv.addSchema({ $id: id, $defs: schemas })
  const validate = ajv.compile({ $ref: `${id}#/$defs/WebhookPayload` })
  return body => validate(body) ? undefined : ajv.errorsText(validate.errors)
}

const find = (events: ReceivedEvent[], type: string, messageId?: string): ReceivedEvent | undefined =>
  events.find(e => e.type === type && (messageId === undefined || e.data.messageId === messageId))

test('the routes: admin credentials only; bad input named; the secret shown once', async () => {
  assert.equal((await h.api('/v1/webhooks')).status, 401, 'an API key is not an admin credential')
  const bad = await admin('/v1/webhooks', { body: { url: 'ftp://x', events: ['message.sent', 'device.online'] } })
  assert.equal(bad.status, 400)
  assert.deepEqual(bad.body.errors.map((e: { field: string }) => e.field), ['url', 'events[0]'])
  const none = await admin('/v1/webhooks', { body: { url: 'https://example.com/h', events: [] } })
  assert.deepEqual(none.body.errors.map((e: { field: string }) => e.field), ['events'])

  const r = await receiver()
  const id = await register(r, ['device.online'])
  assert.match(r.secret!, /^whsec_[A-Za-z0-9+/]{43}=$/)
  const listed = await admin('/v1/webhooks')
  const mine = listed.body.webhooks.find((w: { id: string }) => w.id === id)
  assert.equal(mine.status, 'enabled')
  assert.equal(mine.secret, undefined, 'the secret is never listed')
  assert.equal((await admin(`/v1/webhooks/${id}`)).body.url, r.url)
  assert.equal((await admin(`/v1/webhooks/${id}/deliveries?status=lost`)).status, 400)
  assert.equal((await admin(`/v1/webhooks/${id}`, { method: 'DELETE' })).status, 204)
  assert.equal((await admin(`/v1/webhooks/${id}`)).status, 404)
})

test('every event type reaches the receiver, signed, in the order it happened', async () => {
  const r = await receiver()
  await register(r)
  const user = 'wh-ana'

  const phone = await device(user, 'wh-ana-phone')
  await phone.client.subscribeAsync(`users/${user}/inbox`, { qos: 1 })
  const first = await send({ to: { user }, title: 'hello' })
  await phone.waitFor(1)
  for (const event of ['displayed', 'opened', 'dismissed']) {
    await phone.client.publishAsync(`users/${user}/receipts`, JSON.stringify({ id: first, event }), { qos: 1 })
  }
  await phone.close()
  devices.splice(devices.indexOf(phone), 1)
  await r.until('device.offline', events => find(events, 'device.offline') !== undefined)

  // offline now: a collapsed message, a revoked one and one that expires
  const older = await send({ to: { user }, title: 'score 1-0', collapseKey: 'score' })
  const newer = await send({ to: { user }, title: 'score 2-0', collapseKey: 'score' })
  const revoked = await send({ to: { user }, title: 'oops' })
  assert.equal((await h.api(`/v1/messages/${revoked}`, { method: 'DELETE' })).status, 200)
  const short = await send({ to: { user }, title: 'brief', ttl: 1 })
  // the expiry sweep, as the leader runs it (maintenance.ts), without its grace period
  const deadline = Date.now() + 5_000
  while (await expireDue(h.db.pool, 0, 100) === 0 && Date.now() < deadline) {
    await new Promise(resolve => setTimeout(resolve, 100))
  }

  const events = await r.until('all nine types', got => ALL_EVENTS.every(type => find(got, type)))
  assert.deepEqual(events.slice(0, 6).map(e => e.type), [
    'device.online', 'message.delivered', 'message.displayed', 'message.opened', 'message.dismissed', 'device.offline'
  ])
  for (const type of ['message.delivered', 'message.displayed', 'message.opened', 'message.dismissed']) {
    const e = find(events, type)!
    assert.deepEqual(e.data,
      { messageId: first, deviceId: 'wh-ana-phone', userId: user, reason: null, replacedBy: null })
  }
  assert.deepEqual(find(events, 'message.replaced')!.data,
    { messageId: older, deviceId: 'wh-ana-phone', userId: user, reason: 'collapsed', replacedBy: newer })
  assert.equal(find(events, 'message.revoked', revoked)!.data.reason, 'message-revoked')
  assert.equal(find(events, 'message.expired', short)!.data.reason, 'ttl-ended')
  assert.equal(find(events, 'device.online')!.data.messageId, null)

  assert.ok(events.every(e => /^evt_\d+$/.test(e.id)), 'event ids')
  assert.equal(new Set(events.map(e => e.id)).size, events.length, 'no event twice')
  assert.ok(r.posts.every(p => p.verified), 'the reference verifier accepts every POST')
  const invalid = await payloadValidator()
  for (const post of r.posts) assert.equal(invalid(JSON.parse(post.body)), undefined, post.body.slice(0, 500))
  assert.match(JSON.parse(r.posts[0].body).timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
  assert.match(events[0].timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'times as Herald writes them')
  const sentAt = Date.parse(find(events, 'message.delivered')!.timestamp)
  assert.ok(Math.abs(sentAt - Date.now()) < 60_000, 'timestamps are times of the events')
})

test('ids with quotes, backslashes and other scripts arrive as they are', async () => {
  const r = await receiver()
  await register(r, ['device.online'])
  const user = 'wh-"quoted"\\user ✓'
  const clientId = 'wh-phone "ü" \\ \t😀'
  await device(user, clientId)
  const [event] = await r.until('device.online', events => events.length > 0)
  assert.deepEqual(event.data, { messageId: null, deviceId: clientId, userId: user, reason: null, replacedBy: null })
  const invalid = await payloadValidator()
  assert.equal(invalid(JSON.parse(r.posts[0].body)), undefined)
})

test('a tampered body, a wrong secret and an old timestamp fail verification', async () => {
  const r = await receiver()
  await register(r, ['device.online'])
  await device('wh-bo', 'wh-bo-phone')
  await r.until('device.online', events => events.length > 0)
  const { headers, body } = r.posts[0]
  const verifier = new Webhook(r.secret!)
  assert.doesNotThrow(() => verifier.verify(body, headers))
  assert.throws(() => verifier.verify(body.replace('wh-bo', 'wh-b0'), headers), /signature/i)
  assert.throws(() => new Webhook('whsec_' + Buffer.alloc(32, 7).toString('base64')).verify(body, headers), /signature/i)
  const old = { ...headers, 'webhook-timestamp': String(Math.floor(Date.now() / 1000) - 3600) }
  assert.throws(() => verifier.verify(body, old), /timestamp/i)
})

test('a receiver down for a while gets every event once it is back', async () => {
  const r = await receiver()
  let refused = 0
  r.answer = (_req, res) => { refused++; res.writeHead(503).end('down for maintenance') }
  const id = await register(r, ['message.delivered'])
  const phone = await device('wh-cy', 'wh-cy-phone')
  await phone.client.subscribeAsync('users/wh-cy/inbox', { qos: 1 })
  const ids: string[] = []
  for (let i = 0; i < 20; i++) ids.push(await send({ to: { user: 'wh-cy' }, title: `n${i}` }))
  await phone.waitFor(20)
  // refused at least twice (a retry happened), well within the retry window
  await r.until('refused twice', () => refused >= 2)
  const pending = await admin(`/v1/webhooks/${id}/deliveries?status=pending`)
  assert.equal(pending.body.deliveries[0].lastStatus, 503)
  assert.equal(pending.body.deliveries[0].lastResponse, 'down for maintenance')
  assert.ok((await admin(`/v1/webhooks/${id}`)).body.failingSince, 'shown as failing')
  r.answer = answerOk

  const events = await r.until('all 20 delivered', got => got.length >= 20)
  assert.deepEqual(events.map(e => e.data.messageId).sort(), [...ids].sort())
  const ids503 = new Set(r.posts.filter(p => p.body.includes(ids[0])).map(p => p.headers['webhook-id']))
  assert.equal(ids503.size, 1, 'every attempt of a batch carries the same webhook-id')
  const endpoint = (await admin(`/v1/webhooks/${id}`)).body
  assert.equal(endpoint.status, 'enabled')
  assert.equal(endpoint.failingSince, null)
})

test('failing for the whole retry window disables the endpoint; a replay sends the same batch again', async () => {
  const r = await receiver()
  r.answer = (_req, res) => { res.writeHead(500, { 'content-type': 'text/plain' }).end('x'.repeat(5_000)) }
  const id = await register(r, ['device.online'])
  await device('wh-di', 'wh-di-phone')
  const deadline = Date.now() + RETRY_WINDOW_MS + 5_000
  let endpoint
  do {
    await new Promise(resolve => setTimeout(resolve, 100))
    endpoint = (await admin(`/v1/webhooks/${id}`)).body
  } while (endpoint.status === 'enabled' && Date.now() < deadline)
  assert.equal(endpoint.status, 'disabled')
  assert.match(endpoint.disabledReason, /HTTP 500/)
  assert.equal(endpoint.failedDeliveries, 1)
  const [failed] = (await admin(`/v1/webhooks/${id}/deliveries?status=failed`)).body.deliveries
  assert.equal(failed.lastStatus, 500)
  assert.equal(failed.lastResponse.length, 1_000, 'a start of the answer is kept, not all of it')
  assert.ok(failed.attempts >= 3)

  // while disabled, events are kept for it; the operator fixes the receiver, replays and enables
  await device('wh-di', 'wh-di-tablet')
  r.answer = answerOk
  assert.equal((await admin(`/v1/webhooks/${id}/deliveries/${failed.id}/replay`, { method: 'POST' })).status, 202)
  await r.until('the replayed batch', events => events.length === 1)
  assert.equal(r.events[0].webhookId, failed.id)
  assert.equal(r.events[0].data.deviceId, 'wh-di-phone')
  assert.equal((await admin(`/v1/webhooks/${id}/enable`, { method: 'POST' })).body.status, 'enabled')
  const events = await r.until('the event kept while disabled', got => got.length === 2)
  assert.equal(events[1].data.deviceId, 'wh-di-tablet')
  assert.equal((await admin(`/v1/webhooks/${id}/deliveries/whd_nope/replay`, { method: 'POST' })).status, 404)
})

test('a receiver that never answers, or answers without end, stalls neither sends nor other endpoints', async () => {
  const hanging = await receiver()
  hanging.answer = () => {}
  const flooding = await receiver()
  flooding.answer = (_req, res) => {
    res.writeHead(200)
    const chunk = Buffer.alloc(64 * 1024, 'a')
    const pump = (): void => { while (res.write(chunk)) { /* until the socket pushes back */ } }
    res.on('drain', pump)
    pump()
  }
  const healthy = await receiver()
  await register(hanging, ['message.delivered'])
  await register(flooding, ['message.delivered'])
  await register(healthy, ['message.delivered'])

  const phone = await device('wh-ed', 'wh-ed-phone')
  await phone.client.subscribeAsync('users/wh-ed/inbox', { qos: 1 })
  const id = await send({ to: { user: 'wh-ed' }, title: 'still fast' })
  await phone.waitFor(1)
  await healthy.until('the healthy endpoint', events => find(events, 'message.delivered', id) !== undefined)
  const healthyAt = Date.now()
  // the same event went to the hanging receiver, which holds that POST open until the attempt
  // timeout (1 s here): the healthy endpoint got it before then, so it did not wait behind it
  await hanging.until('the hanging receiver got its POST', () => hanging.posts.length >= 1)
  assert.ok(healthyAt - hanging.posts[0].at < 1_000,
    `the healthy endpoint got the event ${healthyAt - hanging.posts[0].at} ms after the hanging one's POST began`)
  // the hanging one is cut at the attempt timeout and tried again; the flood is cut at the size cap
  await hanging.until('the hanging receiver was tried again', () => hanging.posts.length >= 2, 5_000)
  assert.ok(flooding.posts.length >= 1)
})

test('events every endpoint has read are pruned; the others are kept', async () => {
  const readByAll = async (): Promise<number> => (await h.db.pool.query<{ n: number }>(
    `select count(*)::int as n from webhook_outbox e
     where (e.tx, e.seq) <= (select cursor_tx, cursor_seq from webhook_endpoints
                             order by cursor_tx, cursor_seq limit 1)`
  )).rows[0].n
  const total = async (): Promise<number> =>
    (await h.db.pool.query<{ n: number }>('select count(*)::int as n from webhook_outbox')).rows[0].n
  // the tests above left events behind every endpoint's cursor, and some still ahead of the slowest
  assert.ok(await readByAll() > 0)
  const before = await total()
  const pruned = await pruneWebhooks(h.db.pool, 3, 10_000)
  assert.equal(await readByAll(), 0)
  assert.equal(await total(), before - pruned)
})

/**
 * The endpoint's next batch, formed by the store alone. Events are read once every transaction
 * older than theirs has ended, in any database of the server (store/webhooks.ts): other test
 * files' transactions can hold them back a while, so this tries for up to 10 s.
 */
async function formOnceSettled (pool: Pool, endpointId: string, id: string): Promise<DueBatch> {
  let formed = await formWebhookDelivery(pool, endpointId, id, 1_000)
  for (const deadline = Date.now() + 10_000; formed === undefined && Date.now() < deadline;) {
    await new Promise(resolve => setTimeout(resolve, 50))
    formed = await formWebhookDelivery(pool, endpointId, id, 1_000)
  }
  assert.ok(formed, `batch ${id} formed within 10 s`)
  return formed
}

test('a batch whose first attempt was never recorded (its leader died mid-POST) goes out with the same body',
  async () => {
    // the store alone, on a database no server sends from
    const db = await createTestDatabase()
    try {
      const endpoint = await insertWebhookEndpoint(db.pool,
        { url: 'http://127.0.0.1:9/', description: null, events: ['message.delivered', 'device.online'], secret: 's' })
      // ten outbox rows of three events each, as a trigger writes them (migrations/0009); every
      // third row holds device.offline events, which this endpoint does not want
      await db.pool.query(`insert into webhook_outbox (type, events, at_ms, message_ids, device_ids, user_ids)
        select case when r % 3 = 0 then 'device.offline' else 'message.delivered' end, 3,
               array[1764612803123, 1764612803124, 1764612803125]::bigint[],
               case when r % 3 <> 0 then array[gen_random_uuid(), gen_random_uuid(), gen_random_uuid()] end,
               array['dev "' || r || '"', 'dev\\' || r, 'dév ' || r], array['user-' || r, 'user-' || r, 'user-' || r]
        from generate_series(1, 10) r`)
      const formed = await formOnceSettled(db.pool, endpoint.id, 'whd_rebuilt')
      assert.equal(formed.events, 21, 'the types it wants, not device.offline')
      assert.equal(formed.body, null)
      const body = writePayload(formed.formedAtMs, formed.rows ?? [])
      type Sent = { events: Array<{ id: string, type: string, timestamp: string, data: { deviceId: string } }> }
      const sent = JSON.parse(body) as Sent
      assert.equal(sent.events.length, 21)
      assert.equal(new Set(sent.events.map(e => e.id)).size, 21, 'every event has an id of its own')
      assert.ok(sent.events.every(e => e.type === 'message.delivered'))
      assert.deepEqual(sent.events.slice(0, 3).map(e => [e.timestamp, e.data.deviceId]),
        [
          ['2025-12-01T18:13:23.123Z', 'dev "1"'],
          ['2025-12-01T18:13:23.124Z', 'dev\\1'],
          ['2025-12-01T18:13:23.125Z', 'dév 1']
        ],
        'written as JSON, quotes and backslashes escaped')
      const due = await dueWebhookDelivery(db.pool, endpoint.id)
      assert.equal(due?.id, 'whd_rebuilt')
      const rebuilt = (batch: DueBatch | undefined): string | undefined =>
        batch && (batch.body ?? writePayload(batch.formedAtMs, batch.rows ?? []))
      assert.equal(rebuilt(due), body, 'written again from the outbox, byte for byte')
      // pruning keeps the events such a batch is written from, though the cursor has passed them
      await pruneWebhooks(db.pool, 3, 1_000)
      assert.equal(rebuilt(await dueWebhookDelivery(db.pool, endpoint.id)), body)
      // once an attempt failed the body is stored, and the events can go
      await recordWebhookAttempt(db.pool, endpoint.id, 'whd_rebuilt', { ok: false, error: 'ECONNREFUSED' },
        new Date(Date.now() - 1), 'failing', body)
      await pruneWebhooks(db.pool, 3, 1_000)
      const { rows } = await db.pool.query<{ n: number }>('select count(*)::int as n from webhook_outbox')
      assert.equal(rows[0].n, 0)
      assert.equal((await dueWebhookDelivery(db.pool, endpoint.id))?.body, body)
    } finally {
      await db.drop()
    }
  })

test('upgrading from one outbox row per event (0008): what a receiver got or may get again keeps its ids and body',
  async () => {
    const db = await createTestDatabase({ migrated: false })
    try {
      // the schema as 0008 left it, with migrate()'s own bookkeeping
      const files = (await readdir(path.join(ROOT, 'migrations'))).filter(f => f.endsWith('.sql')).sort()
      await db.pool.query(
        'create table schema_migrations (name text primary key, applied_at timestamptz not null default now())')
      for (const file of files.filter(f => f < '0009')) {
        await db.pool.query(await readFile(path.join(ROOT, 'migrations', file), 'utf8'))
        await db.pool.query('insert into schema_migrations (name) values ($1)', [file])
      }
      const endpoint = await insertWebhookEndpoint(db.pool,
        { url: 'http://127.0.0.1:9/', description: null, events: ['message.delivered', 'message.expired'], secret: 's' })
      type OldEvent = {
        seq: number,
        tx: string,
        type: string,
        at: Date,
        message_id: string,
        device_id: string,
        user_id: string,
        reason: string | null
      }
      const { rows: old } = await db.pool.query<OldEvent>(
        `insert into webhook_events (type, at, message_id, device_id, user_id, reason)
         select case when i = 2 then 'message.expired' else 'message.delivered' end,
                '2026-12-01T10:00:00.041123Z'::timestamptz + i * interval '1 ms', gen_random_uuid(),
                'dev "' || i || '"', 'user-' || i, case when i = 2 then 'ttl-ended' end
         from generate_series(1, 5) i
         returning seq, tx::text, type, at, message_id, device_id, user_id, reason`)
      // ids up to evt_100000 were given out since, to another endpoint (those events pruned)
      await db.pool.query("select setval('webhook_events_seq_seq', 100000)")
      // a leader formed a batch of the first three and died mid-POST: its body was never stored,
      // so 0008 would write it again from these rows; the other two were not read yet
      const formedAt = new Date('2026-12-01T10:00:01.5Z')
      await db.pool.query(
        `insert into webhook_deliveries
           (id, endpoint_id, created_at, event_count, first_tx, first_seq, last_tx, last_seq, status)
         values ('whd_before', $1, $2, 3, $3, $4, $5, $6, 'pending')`,
        [endpoint.id, formedAt, old[0].tx, old[0].seq, old[2].tx, old[2].seq])
      await db.pool.query('update webhook_endpoints set cursor_tx = $2, cursor_seq = $3 where id = $1',
        [endpoint.id, old[2].tx, old[2].seq])

      assert.deepEqual((await migrate(db.pool)).applied, files.filter(f => f >= '0009'))

      const asSent = (e: OldEvent, id: string): object => ({
        id,
        type: e.type,
        timestamp: e.at.toISOString(),
        data: { messageId: e.message_id, deviceId: e.device_id, userId: e.user_id, reason: e.reason, replacedBy: null }
      })
      const due = await dueWebhookDelivery(db.pool, endpoint.id)
      assert.equal(due?.id, 'whd_before')
      assert.ok(due.body, 'its body is stored')
      assert.deepEqual(JSON.parse(due.body),
        { timestamp: formedAt.toISOString(), events: old.slice(0, 3).map(e => asSent(e, `evt_${e.seq}`)) },
        'the body 0008 would have sent again, ids included')
      await recordWebhookAttempt(db.pool, endpoint.id, 'whd_before', { ok: true, status: 204 }, undefined, '')

      const next = await formOnceSettled(db.pool, endpoint.id, 'whd_after')
      const sent = JSON.parse(writePayload(next.formedAtMs, next.rows ?? [])) as { events: Array<{ id: string }> }
      assert.deepEqual(sent.events.map(e => ({ ...e, id: '' })), old.slice(3).map(e => asSent(e, '')),
        'the unread events follow, once each, in order')
      // ids from 0008 were evt_<seq>: a receiver deduping by id must not take a new event for one it saw
      assert.ok(sent.events.every(e => Number(e.id.slice('evt_'.length)) > 100_000), sent.events.map(e => e.id).join())
    } finally {
      await db.drop()
    }
  })

test('a state change of 1,201 deliveries is three outbox rows, sent in whole rows of up to 1,000 events, each id once',
  async () => {
    const db = await createTestDatabase()
    try {
      const endpoint = await insertWebhookEndpoint(db.pool,
        { url: 'http://127.0.0.1:9/', description: null, events: ['message.delivered', 'message.displayed'], secret: 's' })
      const { rows: [{ id: messageId }] } = await db.pool.query<{ id: string }>(
        `insert into messages (id, target_kind, target, priority, ttl, accepted_at, expires_at, payload, recipients)
         values (gen_random_uuid(), 'users', '{}', 'normal', 3600, now(), now() + interval '1 h', '\\x7b7d', 1201)
         returning id`)
      await db.pool.query(
        `insert into deliveries (message_id, device_id, user_id, status, expires_at, queued_at)
         select $1, 'dev-' || i, 'user-' || i, 'sent', now() + interval '1 h', now() from generate_series(1, 1201) i`,
        [messageId])
      // one statement, as a state flush writes them: 1,201 deliveries, two of them displayed too
      await db.pool.query(
        `update deliveries set status = 'delivered', delivered_at = now(),
                displayed_at = case when device_id in ('dev-7', 'dev-1200') then now() end
         where message_id = $1`, [messageId])
      const { rows: outbox } = await db.pool.query<{ type: string, events: number }>(
        'select type, events from webhook_outbox order by tx, seq')
      assert.deepEqual(outbox.map(r => r.type),
        ['message.delivered', 'message.delivered', 'message.delivered', 'message.displayed'],
        'a delivery is delivered before it is displayed')
      assert.deepEqual(outbox.map(r => r.events).sort((a, b) => a - b), [2, 201, 500, 500])

      const batches: Array<{ events: Array<{ id: string, type: string, data: { deviceId: string } }> }> = []
      for (let n = 0; n < 2; n++) {
        const formed = await formOnceSettled(db.pool, endpoint.id, `whd_${n}`)
        batches.push(JSON.parse(writePayload(formed.formedAtMs, formed.rows ?? [])))
        assert.equal(batches[n].events.length, formed.events)
        await recordWebhookAttempt(db.pool, endpoint.id, `whd_${n}`, { ok: true, status: 204 }, undefined, '')
      }
      assert.equal(await formWebhookDelivery(db.pool, endpoint.id, 'whd_none', 1_000), undefined, 'nothing left')
      assert.ok(batches.every(b => b.events.length <= 1_000))
      const events = batches.flatMap(b => b.events)
      assert.equal(new Set(events.map(e => e.id)).size, events.length, 'every event id once')
      const delivered = events.filter(e => e.type === 'message.delivered').map(e => e.data.deviceId)
      assert.equal(new Set(delivered).size, 1201, 'each delivery once')
      assert.deepEqual(events.filter(e => e.type === 'message.displayed').map(e => e.data.deviceId).sort(),
        ['dev-1200', 'dev-7'])
    } finally {
      await db.drop()
    }
  })
