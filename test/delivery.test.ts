// Delivery as a user sees it: what a device receives, when, in which order, and the delivery
// status the REST API reports. Real server, real Postgres, real mqtt.js devices over WebSocket.
import { test, after, before } from 'node:test'
import assert from 'node:assert/strict'
import { startTestHerald, type TestHerald, type TestDevice } from './helpers/herald.js'
import {
  device, getMessage, ids, offlineDevice, reconnect, send, waitForStatus, waitOffline
} from './helpers/delivery.js'

let h: TestHerald
const open: TestDevice[] = []
before(async () => { h = await startTestHerald() })
after(async () => {
  await Promise.all(open.map(d => d.close()))
  await h.stop()
})

/** a device closed by `after` if the test fails before closing it */
async function tracked (d: Promise<TestDevice>): Promise<TestDevice> {
  const dev = await d
  open.push(dev)
  return dev
}

const PAYLOAD_KEYS = ['id', 'title', 'body', 'data', 'priority', 'collapseKey', 'sentAt', 'expiresAt']

test('online delivery: the full payload, then status delivered with deliveredAt after the PUBACK', async () => {
  const phone = await tracked(device(h, 'alice', 'alice-phone'))
  const before = Date.now()
  const sent = await send(h, {
    to: { user: 'alice' },
    title: 'Hi',
    body: 'there',
    data: { orderId: 42, nested: { ok: true } },
    priority: 'high',
    collapseKey: 'greeting',
    ttl: 3600
  })
  assert.equal(sent.recipients, 1)

  const [msg] = await phone.waitFor(1)
  assert.equal(msg.topic, 'users/alice/inbox')
  const p = msg.payload
  assert.deepEqual(Object.keys(p).sort(), [...PAYLOAD_KEYS].sort(),
    'a user message has exactly these fields (no topic)')
  assert.equal(p.id, sent.id)
  assert.equal(p.title, 'Hi')
  assert.equal(p.body, 'there')
  assert.deepEqual(p.data, { orderId: 42, nested: { ok: true } })
  assert.equal(p.priority, 'high')
  assert.equal(p.collapseKey, 'greeting')
  const sentAt = Date.parse(p.sentAt)
  assert.ok(sentAt >= before - 1000 && sentAt <= Date.now() + 1000, `sentAt ${p.sentAt} is the accept time`)
  assert.equal(Date.parse(p.expiresAt) - sentAt, 3600_000, 'expiresAt = sentAt + ttl')

  const delivered = await waitForStatus(h, sent.id, 'alice-phone', 'delivered')
  assert.equal(delivered.userId, 'alice')
  assert.ok(delivered.queuedAt && delivered.sentAt && delivered.deliveredAt, JSON.stringify(delivered))
  assert.ok(Date.parse(delivered.deliveredAt) >= Date.parse(delivered.sentAt))
  assert.equal(delivered.displayedAt, null)
  assert.equal(delivered.openedAt, null)

  const message = await getMessage(h, sent.id)
  assert.equal(message.recipients, 1)
  assert.equal(message.title, 'Hi')
  assert.equal(message.sentAt, p.sentAt)
  assert.equal(message.expiresAt, p.expiresAt)
  assert.equal(message.deliveries.length, 1)
  await phone.close()
})

test('a minimal message carries only the fields that were set, with defaults for priority and ttl', async () => {
  const phone = await tracked(device(h, 'amy', 'amy-phone'))
  const sent = await send(h, { to: { user: 'amy' }, body: 'only a body' })
  const [msg] = await phone.waitFor(1)
  assert.deepEqual(Object.keys(msg.payload).sort(), ['body', 'expiresAt', 'id', 'priority', 'sentAt'])
  assert.equal(msg.payload.id, sent.id)
  assert.equal(msg.payload.priority, 'normal')
  assert.equal(Date.parse(msg.payload.expiresAt) - Date.parse(msg.payload.sentAt), 2_419_200_000,
    'default ttl is 28 days')
  await phone.close()
})

test('offline then reconnect: 20 messages sent while offline arrive in accept order', async () => {
  await offlineDevice(h, 'bob', 'bob-phone')
  const sentIds: string[] = []
  for (let i = 0; i < 20; i++) {
    const sent = await send(h, { to: { user: 'bob' }, title: `n${i}`, data: { i } })
    assert.equal(sent.recipients, 1, 'a persistent session is a target while offline')
    sentIds.push(sent.id)
  }
  const queued = await getMessage(h, sentIds[0])
  assert.equal(queued.deliveries[0].status, 'queued')

  const phone = await tracked(reconnect(h, 'bob', 'bob-phone'))
  const received = await phone.waitFor(20)
  assert.deepEqual(received.map(r => r.payload.id), sentIds, 'same messages, in accept order')
  assert.deepEqual(received.map(r => r.payload.data.i), [...Array(20).keys()])
  assert.ok(received.every(r => r.topic === 'users/bob/inbox'))
  await waitForStatus(h, sentIds[19], 'bob-phone', 'delivered')
  await waitForStatus(h, sentIds[0], 'bob-phone', 'delivered')
  // nothing is sent twice: a later message is the 21st
  const later = await send(h, { to: { user: 'bob' }, title: 'later' })
  await phone.waitFor(21)
  assert.equal(phone.received[20].payload.id, later.id)
  assert.equal(phone.received.length, 21)
  await phone.close()
})

test('multi-device user: both devices of one user get it, recipients 2', async () => {
  const phone = await tracked(device(h, 'carol', 'carol-phone'))
  const laptop = await tracked(device(h, 'carol', 'carol-laptop', { clean: true }))
  const sent = await send(h, { to: { user: 'carol' }, title: 'both' })
  assert.equal(sent.recipients, 2)
  const [a] = await phone.waitFor(1)
  const [b] = await laptop.waitFor(1)
  assert.equal(a.payload.id, sent.id)
  assert.equal(b.payload.id, sent.id)
  assert.equal(a.topic, 'users/carol/inbox')
  assert.equal(b.topic, 'users/carol/inbox')
  await waitForStatus(h, sent.id, 'carol-phone', 'delivered')
  await waitForStatus(h, sent.id, 'carol-laptop', 'delivered')
  const message = await getMessage(h, sent.id)
  assert.deepEqual(message.deliveries.map((d: any) => d.deviceId).sort(), ['carol-laptop', 'carol-phone'])
  await Promise.all([phone.close(), laptop.close()])
})

test('a list of users: each user\'s device gets it on its own inbox, and nobody else', async () => {
  const dan = await tracked(device(h, 'dan', 'dan-phone'))
  const erin = await tracked(device(h, 'erin', 'erin-phone'))
  const frank = await tracked(device(h, 'frank', 'frank-phone'))
  const sent = await send(h, { to: { users: ['dan', 'erin', 'nobody-has-devices'] }, title: 'team' })
  assert.equal(sent.recipients, 2)
  const [d] = await dan.waitFor(1)
  const [e] = await erin.waitFor(1)
  assert.equal(d.payload.id, sent.id)
  assert.equal(d.topic, 'users/dan/inbox')
  assert.equal(e.payload.id, sent.id)
  assert.equal(e.topic, 'users/erin/inbox')
  assert.ok(!('topic' in d.payload))

  // frank was not in the list: a later message to him is the first thing he gets
  const marker = await send(h, { to: { user: 'frank' }, title: 'marker' })
  await frank.waitFor(1)
  assert.deepEqual(ids(frank), [marker.id])
  const message = await getMessage(h, sent.id)
  assert.deepEqual(message.deliveries.map((x: any) => `${x.userId}/${x.deviceId}`).sort(),
    ['dan/dan-phone', 'erin/erin-phone'])
  await Promise.all([dan.close(), erin.close(), frank.close()])
})

test('topic broadcast: online and offline persistent subscribers get it on topics/news, others do not', async () => {
  const reader = await tracked(device(h, 'gina', 'gina-phone', { topics: ['topics/news'] }))
  const cleanReader = await tracked(device(h, 'hank', 'hank-tab', { clean: true, topics: ['topics/news'] }))
  const sports = await tracked(device(h, 'ivan', 'ivan-phone', { topics: ['topics/sports'] }))
  await offlineDevice(h, 'jane', 'jane-phone', ['topics/news'])

  const sent = await send(h, { to: { topic: 'news' }, title: 'Breaking', data: { story: 7 } })
  assert.equal(sent.recipients, 3, 'two online subscribers and one offline persistent one')

  for (const dev of [reader, cleanReader]) {
    const [msg] = await dev.waitFor(1)
    assert.equal(msg.topic, 'topics/news')
    assert.equal(msg.payload.id, sent.id)
    assert.equal(msg.payload.topic, 'news')
    assert.equal(msg.payload.title, 'Breaking')
    assert.deepEqual(Object.keys(msg.payload).sort(),
      ['data', 'expiresAt', 'id', 'priority', 'sentAt', 'title', 'topic'])
  }

  // the offline persistent subscriber gets it on reconnect, still on the topic
  const jane = await tracked(reconnect(h, 'jane', 'jane-phone'))
  const [j] = await jane.waitFor(1)
  assert.equal(j.topic, 'topics/news')
  assert.equal(j.payload.id, sent.id)
  assert.equal(j.payload.topic, 'news')
  await waitForStatus(h, sent.id, 'jane-phone', 'delivered')

  // not subscribed to news: the next thing ivan gets is a later sports message
  const marker = await send(h, { to: { topic: 'sports' }, title: 'goal' })
  assert.equal(marker.recipients, 1)
  const [s] = await sports.waitFor(1)
  assert.equal(s.payload.id, marker.id)
  assert.equal(s.topic, 'topics/sports')
  assert.deepEqual(ids(sports), [marker.id])

  const message = await getMessage(h, sent.id)
  assert.deepEqual(message.deliveries.map((d: any) => d.deviceId).sort(), ['gina-phone', 'hank-tab', 'jane-phone'])
  assert.deepEqual(message.to, { topic: 'news' })
  await Promise.all([reader.close(), cleanReader.close(), sports.close(), jane.close()])
})

test('a topic nobody subscribes to is accepted with recipients 0', async () => {
  const sent = await send(h, { to: { topic: 'empty-room' }, title: 'anyone?' })
  assert.equal(sent.recipients, 0)
  assert.deepEqual((await getMessage(h, sent.id)).deliveries, [])
})

test('a device that first connects after a message was sent does not get it', async () => {
  const early = await send(h, { to: { user: 'kate' }, title: 'before any device' })
  assert.equal(early.recipients, 0)
  const phone = await tracked(device(h, 'kate', 'kate-phone'))
  const later = await send(h, { to: { user: 'kate' }, title: 'after' })
  assert.equal(later.recipients, 1)
  await phone.waitFor(1)
  assert.deepEqual(ids(phone), [later.id])
  assert.deepEqual((await getMessage(h, early.id)).deliveries, [])
  await phone.close()
})

test('a second device of a user does not get what was sent before it first connected', async () => {
  const phone = await tracked(device(h, 'liam', 'liam-phone'))
  const first = await send(h, { to: { user: 'liam' }, title: 'first' })
  await phone.waitFor(1)
  const tablet = await tracked(device(h, 'liam', 'liam-tablet'))
  const second = await send(h, { to: { user: 'liam' }, title: 'second' })
  assert.equal(second.recipients, 2)
  await tablet.waitFor(1)
  await phone.waitFor(2)
  assert.deepEqual(ids(tablet), [second.id])
  assert.deepEqual(ids(phone), [first.id, second.id])
  await Promise.all([phone.close(), tablet.close()])
})

test('a clean-session device only gets messages while it is online', async () => {
  const first = await tracked(device(h, 'mia', 'mia-web', { clean: true }))
  const online = await send(h, { to: { user: 'mia' }, title: 'while online' })
  assert.equal(online.recipients, 1)
  await first.waitFor(1)
  assert.deepEqual(ids(first), [online.id])
  await waitForStatus(h, online.id, 'mia-web', 'delivered')
  await first.close()
  await waitOffline(h, 'mia', 'mia-web')

  const away = await send(h, { to: { user: 'mia' }, title: 'while away' })
  assert.equal(away.recipients, 0, 'a clean session is not a target while offline')

  const second = await tracked(device(h, 'mia', 'mia-web', { clean: true }))
  const back = await send(h, { to: { user: 'mia' }, title: 'back' })
  assert.equal(back.recipients, 1)
  await second.waitFor(1)
  assert.deepEqual(ids(second), [back.id], 'the message sent while away never arrives')
  await second.close()
})

test('a reconnect while messages keep coming: backlog then live messages, in accept order, none twice', async () => {
  await offlineDevice(h, 'nora', 'nora-phone')
  const sentIds: string[] = []
  for (let i = 0; i < 15; i++) sentIds.push((await send(h, { to: { user: 'nora' }, data: { i } })).id)
  const phone = await tracked(reconnect(h, 'nora', 'nora-phone'))
  // sent while the backlog is being read and written out
  for (let i = 15; i < 30; i++) sentIds.push((await send(h, { to: { user: 'nora' }, data: { i } })).id)
  await phone.waitFor(30)
  const marker = await send(h, { to: { user: 'nora' }, title: 'marker' })
  await phone.waitFor(31)
  assert.deepEqual(ids(phone), [...sentIds, marker.id])
  await phone.close()
})

test('a backlog of several pages, read while new messages keep coming: ' +
  'every message once, in accept order', async () => {
  // the queue is read 100 rows first, then 1,000 at a time while 500 are still waiting
  await offlineDevice(h, 'paul', 'paul-phone')
  const sentIds: string[] = []
  const sendBatch = async (from: number, count: number): Promise<void> => {
    const res = await h.api('/v1/messages/batch', {
      body: { messages: Array.from({ length: count }, (_, i) => ({ to: { user: 'paul' }, data: { i: from + i } })) }
    })
    assert.equal(res.status, 202, JSON.stringify(res.body))
    sentIds.push(...res.body.messages.map((m: { id: string }) => m.id))
  }
  for (let i = 0; i < 2_500; i += 500) await sendBatch(i, 500)
  const phone = await tracked(reconnect(h, 'paul', 'paul-phone'))
  // sent while the pages are being read and written out
  for (let i = 2_500; i < 2_700; i += 20) await sendBatch(i, 20)
  await phone.waitFor(2_700, 30_000)
  const marker = await send(h, { to: { user: 'paul' }, title: 'marker' })
  await phone.waitFor(2_701)
  assert.deepEqual(ids(phone), [...sentIds, marker.id])
  await phone.close()
})

test('50 persistent devices reconnecting at once: each gets its own backlog in order, ' +
  'and its topic subscription back', async () => {
  // a restarted server sees this: the session reads, will deletes and queue pages of devices
  // connecting together are batched into shared statements
  const users = Array.from({ length: 50 }, (_, i) => `storm-${i}`)
  await Promise.all(users.map(u => offlineDevice(h, u, `${u}-phone`, ['topics/storm'])))
  const backlog = new Map<string, string[]>()
  const res = await h.api('/v1/messages/batch', {
    body: { messages: users.flatMap(u => [1, 2, 3].map(n => ({ to: { user: u }, data: { n } }))) }
  })
  assert.equal(res.status, 202, JSON.stringify(res.body))
  users.forEach((u, i) => backlog.set(u, res.body.messages.slice(i * 3, i * 3 + 3).map((m: { id: string }) => m.id)))
  const phones = await Promise.all(users.map(u => tracked(reconnect(h, u, `${u}-phone`))))
  await Promise.all(phones.map(p => p.waitFor(3)))
  const topic = await send(h, { to: { topic: 'storm' }, title: 'everyone' })
  assert.equal(topic.recipients, 50)
  await Promise.all(phones.map(p => p.waitFor(4)))
  phones.forEach((p, i) => assert.deepEqual(ids(p), [...backlog.get(users[i])!, topic.id], users[i]))
  await Promise.all(phones.map(p => p.close()))
})

test('a clean session\'s topic subscription ends with it: ' +
  'after a clean reconnect it no longer receives the topic', async () => {
  const first = await tracked(device(h, 'olga', 'olga-web', { clean: true, topics: ['topics/weather'] }))
  const sunny = await send(h, { to: { topic: 'weather' }, title: 'sunny' })
  assert.equal(sunny.recipients, 1)
  await first.waitFor(1)
  await first.close()
  await waitOffline(h, 'olga', 'olga-web')

  const whileAway = await send(h, { to: { topic: 'weather' }, title: 'rain' })
  assert.equal(whileAway.recipients, 0, 'an offline clean session is no subscriber')

  const second = await tracked(device(h, 'olga', 'olga-web', { clean: true }))
  const storm = await send(h, { to: { topic: 'weather' }, title: 'storm' })
  assert.equal(storm.recipients, 0, 'the new clean session never subscribed')
  const marker = await send(h, { to: { user: 'olga' }, title: 'marker' })
  await second.waitFor(1)
  assert.deepEqual(ids(second), [marker.id])
  await second.close()
})

test('a persistent device that comes back with a clean session has lost its topic subscriptions', async () => {
  await offlineDevice(h, 'pia', 'pia-phone', ['topics/deals'])
  const queuedDeal = await send(h, { to: { topic: 'deals' }, title: 'queued deal' })
  assert.equal(queuedDeal.recipients, 1, 'an offline persistent subscriber')
  const phone = await tracked(device(h, 'pia', 'pia-phone', { clean: true, subscribe: false }))
  const deal = await send(h, { to: { topic: 'deals' }, title: 'deal' })
  assert.equal(deal.recipients, 0, 'the clean session discarded the subscription')
  const marker = await send(h, { to: { user: 'pia' }, title: 'marker' })
  await phone.waitFor(1)
  assert.deepEqual(ids(phone), [marker.id], 'neither the queued nor the new deal arrives')
  assert.equal((await getMessage(h, queuedDeal.id)).deliveries[0].status, 'revoked',
    'the discarded session\'s queue is revoked')
  await phone.close()
})
