// The admin UI's JSON routes without a browser: sessions, CSRF, the live channel, the routes
// shared with the REST API, and login rate limiting (last: it locks this address out).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { startTestHerald, connectDevice, ADMIN_PASSWORD, API_KEY, type TestHerald } from './helpers/herald.js'
import { DEFAULT_PASSWORD_POLICY } from '../server/auth/passwordLimiter.js'
import { ensureWebBuild } from './helpers/browser.js'

let h: TestHerald
before(async () => {
  // the pages are the built front end (dist/web): a fresh clone has none until it is built
  await ensureWebBuild()
  h = await startTestHerald()
})
after(async () => { await h?.stop() })

interface Session { cookie: string, csrf: string, setCookie: string }

async function login (password = ADMIN_PASSWORD): Promise<Session> {
  const res = await fetch(`${h.url}/admin/api/login`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: 'admin', password })
  })
  assert.equal(res.status, 200, await res.clone().text())
  const setCookie = res.headers.get('set-cookie')!
  return { cookie: setCookie.split(';')[0], csrf: (await res.json()).csrfToken, setCookie }
}

async function call (
  s: Session | undefined, method: string, path: string, body?: unknown, headers: Record<string, string> = {}
): Promise<{ status: number, body: any, headers: Headers }> {
  const res = await fetch(h.url + path, {
    method,
    headers: {
      ...(s ? { cookie: s.cookie, 'x-herald-csrf': s.csrf } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...headers
    },
    body: body === undefined ? undefined : JSON.stringify(body)
  })
  const text = await res.text()
  let parsed: unknown = text
  try { parsed = JSON.parse(text) } catch {}
  return { status: res.status, body: parsed, headers: res.headers }
}

/** Reads Server-Sent Events until `until` says stop. */
async function readEvents (
  s: Session, path: string, until: (events: Array<{ event: string, data: any }>) => boolean, timeoutMs = 10_000
): Promise<Array<{ event: string, data: any }>> {
  const ctl = new AbortController()
  const timer = setTimeout(() => ctl.abort(), timeoutMs)
  const res = await fetch(h.url + path, { headers: { cookie: s.cookie }, signal: ctl.signal })
  assert.equal(res.status, 200)
  assert.match(res.headers.get('content-type')!, /text\/event-stream/)
  const events: Array<{ event: string, data: any }> = []
  const decoder = new TextDecoder()
  let buffer = ''
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true })
      let end
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end)
        buffer = buffer.slice(end + 2)
        const event = /^event: (.*)$/m.exec(block)?.[1]
        const data = /^data: (.*)$/m.exec(block)?.[1]
        if (event && data) events.push({ event, data: JSON.parse(data) })
      }
      if (until(events)) break
    }
  } catch (err) {
    if (!ctl.signal.aborted) throw err
    throw new Error(`events so far: ${events.map(e => e.event).join(', ')}; timed out`)
  } finally {
    clearTimeout(timer)
    ctl.abort()
  }
  return events
}

test('login sets an HttpOnly, SameSite=Strict session cookie (not Secure over plain http) ' +
  'and stores only its hash', async () => {
  const s = await login()
  assert.match(s.setCookie, /^herald_admin=[\w-]{40,};/)
  assert.match(s.setCookie, /; HttpOnly/)
  assert.match(s.setCookie, /; SameSite=Strict/)
  assert.match(s.setCookie, /; Path=\//)
  assert.doesNotMatch(s.setCookie, /Secure/)
  const id = s.cookie.split('=')[1]
  const { rows } = await h.db.pool.query('select id_hash from admin_sessions')
  assert.ok(rows.some(r => r.id_hash === createHash('sha256').update(id).digest('hex')))
  assert.ok(rows.every(r => !r.id_hash.includes(id)), 'the session id itself is not stored')
  assert.equal((await call(s, 'GET', '/admin/api/session')).body.csrfToken, s.csrf)
})

test('a wrong password is refused with 401 and no cookie', async () => {
  const res = await fetch(`${h.url}/admin/api/login`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password: 'wrong' })
  })
  assert.equal(res.status, 401)
  assert.equal(res.headers.get('set-cookie'), null)
  assert.equal((await res.json()).code, 'unauthorized')
  const wrongUser = await fetch(`${h.url}/admin/api/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user: 'root', password: ADMIN_PASSWORD })
  })
  assert.equal(wrongUser.status, 401)
})

test('writes need the CSRF header and, when sent, this server as Origin', async () => {
  const s = await login()
  const send = { to: { user: 'csrf-user' }, title: 't' }
  const none = await call(s, 'POST', '/admin/api/messages', send, { 'x-herald-csrf': '' })
  assert.equal(none.status, 403)
  assert.equal(none.body.code, 'forbidden')
  assert.equal((await call(s, 'POST', '/admin/api/messages', send, { 'x-herald-csrf': 'not-the-token' })).status, 403)
  const other = await login()
  assert.equal((await call(s, 'POST', '/admin/api/messages', send, { 'x-herald-csrf': other.csrf })).status, 403,
    "another session's token does not fit")
  assert.equal((await call(s, 'POST', '/admin/api/messages', send, { origin: 'https://evil.example' })).status, 403)
  assert.equal(
    (await call(s, 'DELETE', `/admin/api/messages/${crypto.randomUUID()}`, undefined, { 'x-herald-csrf': '' })).status,
    403)
  assert.equal((await call(s, 'POST', '/admin/api/logout', undefined, { 'x-herald-csrf': '' })).status, 403)
  const ok = await call(s, 'POST', '/admin/api/messages', send, { origin: h.url })
  assert.equal(ok.status, 202)
  // reads need no token
  assert.equal((await call(s, 'GET', '/admin/api/overview', undefined, { 'x-herald-csrf': '' })).status, 200)
})

test('a test push goes through the REST path: validated the same way, sender "admin UI"', async () => {
  const s = await login()
  const bad = await call(s, 'POST', '/admin/api/messages', { to: { user: 'a/b' }, title: 'x', ttl: -1 })
  assert.equal(bad.status, 400)
  assert.deepEqual(bad.body.errors.map((e: { field: string }) => e.field).sort(), ['to.user', 'ttl'])
  const device = await connectDevice(h.wsUrl, { clientId: 'gina-phone', password: await h.token('gina') })
  await device.client.subscribeAsync('users/gina/inbox', { qos: 1 })
  const sent = await call(s, 'POST', '/admin/api/messages',
    { to: { user: 'gina' }, title: 'From the admin', data: { k: 1 } })
  assert.equal(sent.status, 202)
  assert.equal(sent.body.recipients, 1)
  const [m] = await device.waitFor(1)
  assert.equal(m.payload.id, sent.body.id)
  const detail = await call(s, 'GET', `/admin/api/messages/${sent.body.id}`)
  assert.equal(detail.body.sender, 'admin UI')
  assert.equal(detail.body.sentFromAdminUi, true)
  const rest = await h.api(`/v1/messages/${sent.body.id}`)
  assert.equal(rest.status, 200, 'and backends see it like any other message')
  await device.close()
})

test('the live channel pushes the overview and a watched message whenever its deliveries change', async () => {
  const s = await login()
  const device = await connectDevice(h.wsUrl, { clientId: 'hana-phone', password: await h.token('hana') })
  await device.client.subscribeAsync('users/hana/inbox', { qos: 1 })
  device.client.on('message', () => {}) // PUBACK is automatic
  const sent = await h.api('/v1/messages', { body: { to: { user: 'hana' }, title: 'watch me' } })
  const id = sent.body.id as string
  await device.waitFor(1)
  const receipt = (event: string): void => {
    device.client.publish('users/hana/receipts', JSON.stringify({ id, event }), { qos: 1 })
  }
  let sentReceipt = false
  const events = await readEvents(s, `/admin/api/events?watch=${id}`, evs => {
    const messages = evs.filter(e => e.event === 'message').map(e => e.data)
    if (messages.length > 0 && !sentReceipt) {
      sentReceipt = true
      receipt('opened')
    }
    return evs.some(e => e.event === 'overview') && messages.some(m => m.deliveries[0]?.openedAt)
  })
  const overview = events.find(e => e.event === 'overview')!.data
  assert.equal(typeof overview.devicesOnline, 'number')
  assert.equal(overview.lastHour.minutes.length, 60)
  const first = events.find(e => e.event === 'message')!.data
  assert.equal(first.id, id)
  assert.equal(first.deliveries[0].deviceId, 'hana-phone')
  assert.ok(events.filter(e => e.event === 'message').length >= 2, 'pushed again after the receipt')
  await device.close()
})

test('the REST API\'s API-key routes accept the admin session (with CSRF for writes) ' +
  'as well as HTTP Basic', async () => {
  const s = await login()
  const list = await call(s, 'GET', '/v1/api-keys')
  assert.equal(list.status, 200)
  assert.ok(list.body.some((k: { name: string }) => k.name === 'API_KEY'))
  assert.equal((await call(s, 'POST', '/v1/api-keys', { name: 'x' }, { 'x-herald-csrf': '' })).status, 403)
  const created = await call(s, 'POST', '/v1/api-keys', { name: 'via session' })
  assert.equal(created.status, 201)
  assert.match(created.body.key, /^hk_/)
  const basic = `Basic ${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64')}`
  assert.equal((await call(undefined, 'GET', '/v1/api-keys', undefined, { authorization: basic })).status, 200)
  assert.equal(
    (await call(undefined, 'GET', '/v1/api-keys', undefined, { authorization: `Bearer ${API_KEY}` })).status, 401)
  assert.equal((await call(undefined, 'GET', '/v1/api-keys', undefined, { cookie: 'herald_admin=forged' })).status, 401)
  // and the admin UI's own routes for keys, devices and tokens
  assert.equal((await call(s, 'DELETE', `/admin/api/api-keys/${created.body.id}`)).status, 200)
  const token = await call(s, 'POST', '/admin/api/tokens', { user: 'demo-user', ttl: 60 })
  assert.equal(token.status, 201)
  assert.equal(token.body.token.split('.').length, 3)
  const users = await call(s, 'GET', '/admin/api/users?prefix=ha')
  assert.deepEqual(users.body.map((u: { userId: string }) => u.userId), ['hana'])
  const devices = await call(s, 'GET', '/admin/api/users/hana/devices')
  assert.equal(devices.body[0].deviceId, 'hana-phone')
})

test('the log route validates its query and pages with an opaque cursor', async () => {
  const s = await login()
  const bad = await call(s, 'GET', '/admin/api/log?status=lost&since=yesterday&limit=0&cursor=nope&color=red')
  assert.equal(bad.status, 400)
  assert.deepEqual(bad.body.errors.map((e: { field: string }) => e.field).sort(),
    ['color', 'cursor', 'limit', 'since', 'status'])
  for (let i = 0; i < 5; i++) await h.api('/v1/messages', { body: { to: { user: 'ivan' }, title: `page ${i}` } })
  const first = await call(s, 'GET', '/admin/api/log?limit=3&text=page')
  assert.deepEqual(first.body.items.map((r: { title: string }) => r.title), ['page 4', 'page 3', 'page 2'])
  const second = await call(s, 'GET', `/admin/api/log?limit=3&text=page&cursor=${first.body.next}`)
  assert.deepEqual(second.body.items.map((r: { title: string }) => r.title), ['page 1', 'page 0'])
  assert.equal(second.body.next, null)
})

test('sessions expire when idle, are extended by use, and end on logout (with their event streams)', async () => {
  const s = await login()
  const hash = createHash('sha256').update(s.cookie.split('=')[1]).digest('hex')
  // used after more than a minute: the idle expiry moves forward
  await h.db.pool.query(
    "update admin_sessions set last_seen_at = now() - interval '2 minutes', expires_at = now() + interval '1 minute' " +
    'where id_hash = $1', [hash])
  assert.equal((await call(s, 'GET', '/admin/api/overview')).status, 200)
  const { rows } = await h.db.pool.query(
    "select expires_at > now() + interval '11 hours' as extended from admin_sessions where id_hash = $1", [hash])
  assert.equal(rows[0].extended, true)
  // idle too long
  await h.db.pool.query("update admin_sessions set expires_at = now() - interval '1 second' where id_hash = $1", [hash])
  assert.equal((await call(s, 'GET', '/admin/api/overview')).status, 401)

  const t = await login()
  const stream = readEvents(t, '/admin/api/events', evs => evs.some(e => e.event === 'logout'))
  await new Promise(resolve => setImmediate(resolve))
  await call(t, 'GET', '/admin/api/overview')
  const out = await call(t, 'POST', '/admin/api/logout')
  assert.equal(out.status, 204)
  assert.match(out.headers.get('set-cookie')!, /herald_admin=;.*Max-Age=0/)
  assert.equal((await call(t, 'GET', '/admin/api/overview')).status, 401)
  const events = await stream
  assert.equal(events.at(-1)!.event, 'logout')
})

test('pages carry a Content-Security-Policy without inline script; ' +
  'unknown admin paths still need the session', async () => {
  for (const path of ['/admin', '/admin/log', '/admin/messages/123', '/demo']) {
    const res = await fetch(h.url + path)
    assert.equal(res.status, 200, path)
    const csp = res.headers.get('content-security-policy')!
    assert.match(csp, /script-src 'self'(;|$)/)
    assert.match(csp, /connect-src 'self' ws: wss:/)
    assert.match(csp, /frame-ancestors 'none'/)
    const html = await res.text()
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, `${path} has no inline script`)
  }
  assert.equal((await fetch(`${h.url}/admin/api/anything`)).status, 401)
  assert.equal((await fetch(`${h.url}/web/assets/missing.js`)).status, 404)
})

test(`after ${DEFAULT_PASSWORD_POLICY.freeFailures} failed logins an address is refused for a while, ` +
  'even with the right password', async () => {
  for (let i = 0; i < DEFAULT_PASSWORD_POLICY.freeFailures; i++) {
    const res = await fetch(`${h.url}/admin/api/login`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password: `guess-${i}` })
    })
    assert.equal(res.status, 401)
  }
  const blocked = await fetch(`${h.url}/admin/api/login`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password: ADMIN_PASSWORD })
  })
  assert.equal(blocked.status, 429)
  assert.ok(Number(blocked.headers.get('retry-after')) > 0)
  assert.equal((await blocked.json()).code, 'too-many-requests')
})
