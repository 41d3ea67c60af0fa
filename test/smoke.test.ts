import { test, after, before } from 'node:test'
import assert from 'node:assert/strict'
import { startTestHerald, connectDevice, type TestHerald } from './helpers/herald.js'

let h: TestHerald
before(async () => { h = await startTestHerald() })
after(async () => { await h.stop() })

test('a push reaches an online device with its full payload', async () => {
  const device = await connectDevice(h.wsUrl, { clientId: 'alice-phone', password: await h.token('alice') })
  await device.client.subscribeAsync('users/alice/inbox', { qos: 1 })
  const sent = await h.api('/v1/messages', {
    body: { to: { user: 'alice' }, title: 'Hi', body: 'there', data: { a: 1 } }
  })
  assert.equal(sent.status, 202, JSON.stringify(sent.body))
  assert.equal(sent.body.recipients, 1)
  const [msg] = await device.waitFor(1)
  assert.equal(msg.topic, 'users/alice/inbox')
  assert.equal(msg.payload.id, sent.body.id)
  assert.equal(msg.payload.title, 'Hi')
  await device.close()
})
