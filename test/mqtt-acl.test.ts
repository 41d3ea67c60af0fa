// What a device may subscribe to and publish, and whose session it may take: issue 2,
// "Contract: devices". Every denial is checked against a real broker with real mqtt.js clients.
import { test, after, before } from 'node:test'
import assert from 'node:assert/strict'
import { startTestHerald, connectDevice, type TestHerald, type TestDevice } from './helpers/herald.js'
import { connectRefused, grantedQos, sleep, waitForClose } from './helpers/probe.js'

let h: TestHerald
before(async () => { h = await startTestHerald() })
after(async () => { await h.stop() })

const SUBACK_FAILURE = 128
const IDENTIFIER_REJECTED = 2
const NOT_AUTHORIZED = 5

/** No other message arrives within a short while: lets a wrongly forwarded publish show up. */
async function settle (): Promise<void> { await sleep(300) }

test('forbidden subscriptions get SUBACK 0x80 while the allowed ones in the same SUBSCRIBE are granted', async () => {
  const device = await connectDevice(h.wsUrl, { clientId: 'acl-sub-alice', password: await h.token('alice') })
  try {
    const wanted = [
      'users/alice/inbox', // allowed
      'users/bob/inbox',
      '+',
      '#',
      'users/+/inbox',
      'users/alice/#',
      '$SYS/#',
      'topics/#',
      'topics/+',
      'users/alice/receipts',
      'topics/news', // allowed
      'elsewhere'
    ]
    const granted = await grantedQos(device.client, wanted, 1)
    assert.equal(granted.length, wanted.length)
    const byTopic = Object.fromEntries(wanted.map((t, i) => [t, granted[i]]))
    assert.equal(byTopic['users/alice/inbox'], 1)
    assert.equal(byTopic['topics/news'], 1)
    for (const t of wanted.filter(t => t !== 'users/alice/inbox' && t !== 'topics/news')) {
      assert.equal(byTopic[t], SUBACK_FAILURE, `${t} must be refused`)
    }
    // Herald sends at QoS 1; a QoS 2 request is granted (aedes 1.2 answers with the requested
    // QoS in the SUBACK even though the hook lowers it to 1, which MQTT allows: the server may
    // deliver below the granted QoS)
    const [sports] = await grantedQos(device.client, ['topics/sports'], 2)
    assert.ok(sports === 1 || sports === 2, `topics/sports granted ${sports}`)
    assert.ok(device.client.connected, 'a refused subscription does not disconnect')

    // the refused subscriptions carry nothing: a message to bob does not reach alice
    const toBob = await h.api('/v1/messages', { body: { to: { user: 'bob' }, title: 'for bob only' } })
    assert.equal(toBob.status, 202)
    const toAlice = await h.api('/v1/messages', { body: { to: { user: 'alice' }, title: 'for alice' } })
    const [first] = await device.waitFor(1)
    await settle()
    assert.equal(device.received.length, 1)
    assert.equal(first.payload.id, toAlice.body.id)
  } finally {
    await device.close()
  }
})

test('a refused wildcard in a persistent session\'s SUBSCRIBE does not make it a broadcast subscriber', async () => {
  // aedes stores every subscription of a SUBSCRIBE packet once one of them is allowed; Herald's
  // topic fan-out reads the stored subscriptions, so a refused `topics/#` or `#` must not be kept
  const mallory = await connectDevice(h.wsUrl,
    { clientId: 'acl-wild-mallory', password: await h.token('mallory'), clean: false })
  try {
    assert.deepEqual(await grantedQos(mallory.client, ['users/mallory/inbox', 'topics/#', '#', 'topics/+'], 1),
      [1, 128, 128, 128])
    for (const round of ['online', 'reconnected']) {
      const sent = await h.api('/v1/messages', { body: { to: { topic: `wild-${round}` }, title: 'not for mallory' } })
      assert.equal(sent.status, 202)
      assert.equal(sent.body.recipients, 0, `${round}: nobody is subscribed to topics/wild-${round}`)
      if (round === 'online') {
        await mallory.close()
        const back = await connectDevice(h.wsUrl,
          { clientId: 'acl-wild-mallory', password: await h.token('mallory'), clean: false })
        Object.assign(mallory, back)
      }
    }
    await settle()
    assert.deepEqual(mallory.received, [])
  } finally {
    await mallory.close()
  }
})

/** Publishes at QoS 1 as `offender`, expects to be disconnected. */
async function publishAndExpectDisconnect (offender: TestDevice, topic: string, payload: string): Promise<void> {
  const closed = waitForClose(offender.client, 5_000)
  offender.client.publish(topic, payload, { qos: 1 }, () => {})
  await closed
}

test('publishing to another user\'s inbox disconnects the publisher and reaches nobody', async () => {
  const bob = await connectDevice(h.wsUrl, { clientId: 'acl-pub-bob', password: await h.token('bob') })
  await bob.client.subscribeAsync('users/bob/inbox', { qos: 1 })
  const mallory = await connectDevice(h.wsUrl, { clientId: 'acl-pub-mallory', password: await h.token('mallory') })
  try {
    await publishAndExpectDisconnect(mallory, 'users/bob/inbox', JSON.stringify({ id: 'forged', title: 'click here' }))
    const later = await h.api('/v1/messages', { body: { to: { user: 'bob' }, title: 'real' } })
    assert.equal(later.status, 202)
    await bob.waitFor(1)
    await settle()
    assert.deepEqual(bob.received.map(r => r.payload.id), [later.body.id], 'only the REST message reaches bob')
  } finally {
    await bob.close()
    mallory.client.end(true)
  }
})

test('publishing to a broadcast topic disconnects the publisher and reaches no subscriber', async () => {
  const carol = await connectDevice(h.wsUrl, { clientId: 'acl-topic-carol', password: await h.token('carol') })
  await carol.client.subscribeAsync('topics/news', { qos: 1 })
  const mallory = await connectDevice(h.wsUrl, { clientId: 'acl-topic-mallory', password: await h.token('mallory') })
  try {
    await publishAndExpectDisconnect(mallory, 'topics/news', JSON.stringify({ id: 'forged', title: 'breaking' }))
    const later = await h.api('/v1/messages', { body: { to: { topic: 'news' }, title: 'real news' } })
    assert.equal(later.status, 202)
    const [msg] = await carol.waitFor(1)
    await settle()
    assert.equal(carol.received.length, 1)
    assert.equal(msg.topic, 'topics/news')
    assert.equal(msg.payload.id, later.body.id)
  } finally {
    await carol.close()
    mallory.client.end(true)
  }
})

test('publishing elsewhere ($SYS, own inbox, unknown topic) disconnects the publisher', async () => {
  for (const topic of ['$SYS/broker/uptime', 'users/mallory/inbox', 'anything']) {
    const mallory = await connectDevice(h.wsUrl, { clientId: 'acl-else-mallory', password: await h.token('mallory') })
    await publishAndExpectDisconnect(mallory, topic, '{}')
    mallory.client.end(true)
  }
})

test('a receipt on another user\'s receipts topic disconnects the publisher and is not recorded', async () => {
  const bob = await connectDevice(h.wsUrl, { clientId: 'acl-rcpt-bob', password: await h.token('bob') })
  await bob.client.subscribeAsync('users/bob/inbox', { qos: 1 })
  const mallory = await connectDevice(h.wsUrl, { clientId: 'acl-rcpt-mallory', password: await h.token('mallory') })
  try {
    const sent = await h.api('/v1/messages', { body: { to: { user: 'bob' }, title: 'hello' } })
    await bob.waitFor(1)
    await publishAndExpectDisconnect(mallory, 'users/bob/receipts',
      JSON.stringify({ id: sent.body.id, event: 'opened' }))

    // bob's own receipt is accepted (PUBACK) and recorded, bob stays connected
    await bob.client.publishAsync('users/bob/receipts',
      JSON.stringify({ id: sent.body.id, event: 'displayed' }), { qos: 1 })
    assert.ok(bob.client.connected)
    let delivery: any
    for (let i = 0; i < 50; i++) {
      const got = await h.api(`/v1/messages/${sent.body.id}`)
      delivery = got.body.deliveries.find((d: any) => d.deviceId === 'acl-rcpt-bob')
      if (delivery?.displayedAt) break
      await sleep(100)
    }
    assert.ok(delivery?.displayedAt, 'bob\'s own receipt is recorded')
    assert.equal(delivery.openedAt, null, 'mallory\'s forged "opened" receipt is not recorded')
  } finally {
    await bob.close()
    mallory.client.end(true)
  }
})

test('another user\'s token cannot take over a persistent session; the owner still gets what was queued', async () => {
  const olivia = await connectDevice(h.wsUrl,
    { clientId: 'acl-takeover-phone', password: await h.token('olivia'), clean: false })
  await olivia.client.subscribeAsync('users/olivia/inbox', { qos: 1 })
  await olivia.close()
  const queued = await h.api('/v1/messages', { body: { to: { user: 'olivia' }, title: 'while away' } })
  assert.equal(queued.status, 202)
  assert.equal(queued.body.recipients, 1)

  const brutusToken = await h.token('brutus')
  assert.equal(
    await connectRefused(h.wsUrl, { clientId: 'acl-takeover-phone', password: brutusToken, clean: false }),
    NOT_AUTHORIZED)
  // a clean connect would wipe olivia's session: refused as well
  assert.equal(
    await connectRefused(h.wsUrl, { clientId: 'acl-takeover-phone', password: brutusToken, clean: true }),
    NOT_AUTHORIZED)
  const brutusDevices = await h.api('/v1/users/brutus/devices')
  assert.deepEqual(brutusDevices.body, [])
  const oliviaDevices = await h.api('/v1/users/olivia/devices')
  assert.deepEqual(oliviaDevices.body.map((d: any) => [d.deviceId, d.pending]), [['acl-takeover-phone', 1]])

  const back = await connectDevice(h.wsUrl,
    { clientId: 'acl-takeover-phone', password: await h.token('olivia'), clean: false })
  try {
    const [msg] = await back.waitFor(1)
    assert.equal(msg.payload.id, queued.body.id)
    assert.equal(msg.topic, 'users/olivia/inbox')
  } finally {
    await back.close()
  }
})

test('another user\'s token cannot kick an online device off its client id', async () => {
  const alice = await connectDevice(h.wsUrl,
    { clientId: 'acl-online-tablet', password: await h.token('alice'), clean: false })
  try {
    assert.equal(
      await connectRefused(h.wsUrl, { clientId: 'acl-online-tablet', password: await h.token('bob'), clean: true }),
      NOT_AUTHORIZED)
    await settle()
    assert.ok(alice.client.connected, 'the owner stays connected')
    const sent = await h.api('/v1/messages', { body: { to: { user: 'alice' }, title: 'still here' } })
    const [msg] = await alice.waitFor(1)
    assert.equal(msg.payload.id, sent.body.id)
  } finally {
    await alice.close()
  }
})

test('the owner and another user connecting with one client id at the same moment: ' +
  'the owner gets in, the other is refused', async () => {
  // connects arriving together are claimed in one statement; the same id twice must still be
  // decided one after the other, whichever comes first
  const ownerToken = await h.token('ida')
  const otherToken = await h.token('ivan')
  const first = await connectDevice(h.wsUrl, { clientId: 'acl-race-phone', password: ownerToken, clean: false })
  await first.close()
  for (let round = 0; round < 5; round++) {
    const [owner, other] = await Promise.all([
      connectDevice(h.wsUrl, { clientId: 'acl-race-phone', password: ownerToken, clean: false }),
      connectRefused(h.wsUrl, { clientId: 'acl-race-phone', password: otherToken, clean: round % 2 === 0 })
    ])
    assert.equal(other, NOT_AUTHORIZED, `round ${round}`)
    assert.ok(owner.client.connected, `round ${round}: the owner is connected`)
    await owner.close()
  }
  const devices = await h.api('/v1/users/ivan/devices')
  assert.deepEqual(devices.body, [])
})

test('a client id of 129 characters is refused with CONNACK 2; 128 is accepted', async () => {
  const token = await h.token('alice')
  assert.equal(await connectRefused(h.wsUrl, { clientId: 'x'.repeat(129), password: token }), IDENTIFIER_REJECTED)
  const ok = await connectDevice(h.wsUrl, { clientId: 'y'.repeat(128), password: token })
  assert.ok(ok.client.connected)
  await ok.close()
  const devices = await h.api('/v1/users/alice/devices')
  const ids = devices.body.map((d: any) => d.deviceId)
  assert.ok(ids.includes('y'.repeat(128)))
  assert.ok(!ids.includes('x'.repeat(129)))
})
