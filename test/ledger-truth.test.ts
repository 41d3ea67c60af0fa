// The per-device record never contradicts what the device saw: a message the device received is
// never recorded `replaced`, and every final status says why (reason, replacedBy).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { startTestHerald, ADMIN_PASSWORD, type TestHerald, type TestDevice } from './helpers/herald.js'
import {
  device, deliveryOf, ids, offlineDevice, reconnect, send, waitForStatus, waitUntil
} from './helpers/delivery.js'

let h: TestHerald
const open: TestDevice[] = []
const tracked = async (d: Promise<TestDevice>): Promise<TestDevice> => {
  const dev = await d
  open.push(dev)
  return dev
}

before(async () => { h = await startTestHerald() })
after(async () => {
  await Promise.all(open.map(d => d.close()))
  await h?.stop()
})

/**
 * Holds back the PUBACKs of a device (mqtt.js sends one when its message handler calls back,
 * and handles the next packet only then), so a test can keep a delivery written but
 * unacknowledged; `release` acknowledges what is held and everything after.
 */
function holdAcks (d: TestDevice): { release: () => void } {
  const held: Array<() => void> = []
  let holding = true
  const client = d.client as unknown as { handleMessage: (packet: unknown, callback: (err?: Error) => void) => void }
  client.handleMessage = (_packet, callback) => { if (holding) held.push(() => callback()); else callback() }
  return { release: () => { holding = false; for (const ack of held.splice(0)) ack() } }
}

const FINAL = new Set(['delivered', 'replaced'])

test('collapse with the device online: a message the device received is never recorded replaced', async t => {
  const phone = await tracked(device(h, 'cleo', 'cleo-phone'))
  const PAIRS = 40
  // A then B with one collapseKey, in quick succession; pairs overlap so writes and collapses race
  const pairs = await Promise.all(Array.from({ length: PAIRS }, async (_, i) => {
    const a = await send(h, { to: { user: 'cleo' }, title: `A${i}`, collapseKey: `k${i}` })
    const b = await send(h, { to: { user: 'cleo' }, title: `B${i}`, collapseKey: `k${i}` })
    return { a: a.id, b: b.id }
  }))
  const settled = await waitUntil('every delivery to reach a final status', async () => {
    const rows = await Promise.all(pairs.map(async p => ({
      ...p, ra: await deliveryOf(h, p.a, 'cleo-phone'), rb: await deliveryOf(h, p.b, 'cleo-phone')
    })))
    return rows.every(r => FINAL.has(r.ra.status) && r.rb.status === 'delivered') ? rows : undefined
  }, 20_000, 50)
  const received = new Set(ids(phone))
  let replaced = 0
  for (const { a, b, ra } of settled) {
    assert.ok(received.has(b), `B ${b} reached the device`)
    if (received.has(a)) {
      assert.equal(ra.status, 'delivered', `A ${a} was received by the device, so it is not ${ra.status}`)
      assert.ok(ra.sentAt && ra.deliveredAt, 'its sent/delivered history is kept')
      assert.equal(ra.reason, null)
    } else {
      replaced++
      assert.equal(ra.status, 'replaced', `A ${a} never reached the device`)
      assert.equal(ra.sentAt, null, 'a replaced delivery was never written')
      assert.equal(ra.reason, 'collapsed')
      assert.equal(ra.replacedBy, b, 'replacedBy names the message that took its place')
    }
  }
  t.diagnostic(
    `${replaced} of ${PAIRS} older messages replaced before they were written, ${PAIRS - replaced} delivered`)
  assert.equal(received.size, PAIRS * 2 - replaced,
    'the device got each message at most once and every one not replaced')
})

test('replaced while queued for an offline device: reason collapsed, replacedBy the newer message', async () => {
  await offlineDevice(h, 'remy', 'remy-phone')
  const old = await send(h, { to: { user: 'remy' }, title: 'v1', collapseKey: 'state' })
  const newer = await send(h, { to: { user: 'remy' }, title: 'v2', collapseKey: 'state' })
  const row = await deliveryOf(h, old.id, 'remy-phone')
  assert.deepEqual([row.status, row.reason, row.replacedBy], ['replaced', 'collapsed', newer.id])
})

test('a written delivery is not replaced: the device keeps it, and the newer one arrives too', async () => {
  const phone = await tracked(device(h, 'wes', 'wes-phone'))
  const acks = holdAcks(phone)
  const first = await send(h, { to: { user: 'wes' }, title: 'v1', collapseKey: 'state' })
  await phone.waitFor(1)
  await waitForStatus(h, first.id, 'wes-phone', 'sent')
  const second = await send(h, { to: { user: 'wes' }, title: 'v2', collapseKey: 'state' })
  assert.equal((await deliveryOf(h, first.id, 'wes-phone')).status, 'sent', 'written, not yet acknowledged: still sent')
  acks.release()
  await phone.waitFor(2)
  assert.deepEqual(ids(phone), [first.id, second.id])
  await waitForStatus(h, first.id, 'wes-phone', 'delivered')
  await waitForStatus(h, second.id, 'wes-phone', 'delivered')
})

test('revoked: by DELETE /v1/messages, by DELETE /v1/devices, and by a discarded session, ' +
  'each with its reason', async () => {
  await offlineDevice(h, 'rita', 'rita-phone')
  const m1 = await send(h, { to: { user: 'rita' }, title: 'oops' })
  assert.equal((await h.api(`/v1/messages/${m1.id}`, { method: 'DELETE' })).status, 200)
  const r1 = await deliveryOf(h, m1.id, 'rita-phone')
  assert.deepEqual([r1.status, r1.reason], ['revoked', 'message-revoked'])

  const m2 = await send(h, { to: { user: 'rita' }, title: 'pending' })
  assert.equal((await h.api('/v1/devices/rita-phone', { method: 'DELETE' })).status, 200)
  const r2 = await deliveryOf(h, m2.id, 'rita-phone')
  assert.deepEqual([r2.status, r2.reason], ['revoked', 'device-removed'])

  await offlineDevice(h, 'rita', 'rita-tablet')
  const m3 = await send(h, { to: { user: 'rita' }, title: 'for the old session' })
  const clean = await tracked(device(h, 'rita', 'rita-tablet', { clean: true }))
  const r3 = await waitForStatus(h, m3.id, 'rita-tablet', 'revoked')
  assert.equal(r3.reason, 'session-discarded')
  assert.equal(clean.received.length, 0)
})

test('revoked from the admin UI: the reason says so', async () => {
  const login = await fetch(`${h.url}/admin/api/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user: 'admin', password: ADMIN_PASSWORD })
  })
  assert.equal(login.status, 200)
  const headers = {
    cookie: login.headers.get('set-cookie')!.split(';')[0], 'x-herald-csrf': (await login.json()).csrfToken
  }
  await offlineDevice(h, 'ada', 'ada-phone')
  const m1 = await send(h, { to: { user: 'ada' }, title: 'one' })
  assert.equal((await fetch(`${h.url}/admin/api/messages/${m1.id}`, { method: 'DELETE', headers })).status, 200)
  const r1 = await deliveryOf(h, m1.id, 'ada-phone')
  assert.deepEqual([r1.status, r1.reason], ['revoked', 'admin-message-revoked'])
  const m2 = await send(h, { to: { user: 'ada' }, title: 'two' })
  assert.equal((await fetch(`${h.url}/admin/api/devices/ada-phone`, { method: 'DELETE', headers })).status, 200)
  const r2 = await deliveryOf(h, m2.id, 'ada-phone')
  assert.deepEqual([r2.status, r2.reason], ['revoked', 'admin-device-removed'])
})

test('revoked after it was written: a PUBACK that comes later records delivered, since the device has it', async () => {
  const phone = await tracked(device(h, 'lou', 'lou-phone'))
  const acks = holdAcks(phone)
  const m = await send(h, { to: { user: 'lou' }, title: 'too late to take back' })
  await phone.waitFor(1)
  await waitForStatus(h, m.id, 'lou-phone', 'sent')
  const revoke = await h.api(`/v1/messages/${m.id}`, { method: 'DELETE' })
  assert.equal(revoke.body.revoked, 1, 'written but unacknowledged: it is not sent again')
  assert.equal((await deliveryOf(h, m.id, 'lou-phone')).reason, 'message-revoked')
  acks.release()
  const row = await waitForStatus(h, m.id, 'lou-phone', 'delivered')
  assert.equal(row.reason, null)
})

test('expired: a ttl-0 message whose connection ended says connection-ended; ' +
  'a clean session\'s leftovers say clean-session-ended', async () => {
  const persistent = await device(h, 'tess', 'tess-phone')
  holdAcks(persistent)
  const live = await send(h, { to: { user: 'tess' }, title: 'now or never', ttl: 0 })
  await persistent.waitFor(1)
  await persistent.close()
  const r1 = await waitForStatus(h, live.id, 'tess-phone', 'expired')
  assert.equal(r1.reason, 'connection-ended')

  const clean = await device(h, 'tess', 'tess-laptop', { clean: true })
  holdAcks(clean)
  const m = await send(h, { to: { user: 'tess' }, title: 'while the laptop is here' })
  await clean.waitFor(1)
  await clean.close()
  const r2 = await waitForStatus(h, m.id, 'tess-laptop', 'expired')
  assert.equal(r2.reason, 'clean-session-ended')
  // the persistent phone keeps what was queued for it
  const phone = await tracked(reconnect(h, 'tess', 'tess-phone'))
  await phone.waitFor(1)
  assert.deepEqual(ids(phone), [m.id])
})

test('a claim the database refuses is retried: the online device then gets everything, in order, once', async () => {
  const phone = await tracked(device(h, 'cy', 'cy-phone'))
  // while `claims_refused` holds a row, Postgres refuses to mark a delivery sent; the sequence
  // counts refusals (a sequence is not rolled back with the refused statement)
  await h.db.pool.query(`create table claims_refused (x int); create sequence claims_refusals;
    create function refuse_claims () returns trigger language plpgsql as $$
      begin
        if new.status = 'sent' and exists (select 1 from claims_refused) then
          perform nextval('claims_refusals');
          raise exception 'claims refused for this test';
        end if;
        return new;
      end $$;
    create trigger refuse_claims before update on deliveries for each row execute function refuse_claims();
    insert into claims_refused values (1)`)
  try {
    const first = await send(h, { to: { user: 'cy' }, title: 'one' })
    const second = await send(h, { to: { user: 'cy' }, title: 'two' })
    // refused, then refused again on the retry a second later
    await waitUntil('the claim to be refused twice', async () => {
      const { rows } = await h.db.pool.query<{ n: number }>('select last_value::int as n from claims_refusals')
      return rows[0].n >= 2
    }, 5_000, 50)
    assert.equal((await deliveryOf(h, first.id, 'cy-phone')).status, 'queued', 'not written while the claim is refused')
    assert.equal(phone.received.length, 0)
    await h.db.pool.query('delete from claims_refused')
    await phone.waitFor(2, 5_000)
    assert.deepEqual(ids(phone), [first.id, second.id])
    await waitForStatus(h, second.id, 'cy-phone', 'delivered')
    await send(h, { to: { user: 'cy' }, title: 'marker' })
    await phone.waitFor(3)
    assert.equal(phone.received.length, 3, 'nothing arrived twice')
  } finally {
    await h.db.pool.query(`drop trigger refuse_claims on deliveries; drop function refuse_claims();
      drop table claims_refused; drop sequence claims_refusals`)
  }
})
