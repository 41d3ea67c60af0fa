// Bad bytes on the MQTT endpoints: issue 2, "Bad input". Garbage, malformed packets and huge
// frames drop that one connection; a device connected beforehand keeps receiving pushes.
import { test, after, before, describe } from 'node:test'
import assert from 'node:assert/strict'
import mqttPacket from 'mqtt-packet'
import { startTestHerald, connectDevice, JWT_SECRET, type TestHerald, type TestDevice } from './helpers/herald.js'
import { craftJwt, hs256, nowSeconds, openRawTcp, openRawWs, sleep } from './helpers/probe.js'
import { stillServed } from './helpers/delivery.js'

/** A CONNECT packet; `protocolName` may be wrong on purpose. */
function connectBytes ({ protocolName = 'MQTT', level = 4, clientId = 'raw', flags = 0x02 } = {}): Buffer {
  const name = Buffer.from(protocolName)
  const id = Buffer.from(clientId)
  const variable = Buffer.concat([
    Buffer.from([name.length >> 8, name.length & 0xff]), name,
    Buffer.from([level, flags, 0x00, 0x3c]),
    Buffer.from([id.length >> 8, id.length & 0xff]), id
  ])
  return Buffer.concat([Buffer.from([0x10, variable.length]), variable])
}

const publishBytes = (topic: string, payload: string): Buffer =>
  mqttPacket.generate({ cmd: 'publish', topic, payload, qos: 0, retain: false, dup: false })

describe('WebSocket /mqtt', () => {
  let h: TestHerald
  let witness: TestDevice
  before(async () => {
    h = await startTestHerald()
    witness = await connectDevice(h.wsUrl, { clientId: 'bad-ws-witness', password: await h.token('wendy') })
  })
  after(async () => {
    await witness.close()
    await h.stop()
  })

  test('garbage bytes close that connection; others are still served', async () => {
    for (const garbage of [
      Buffer.from('GET / HTTP/1.1\r\n\r\n'), Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0x00]),
      Buffer.from('\x00\x00\x00\x00')
    ]) {
      const raw = await openRawWs(h.wsUrl)
      raw.ws.send(garbage)
      await raw.closed()
    }
    // random noise
    const raw = await openRawWs(h.wsUrl)
    raw.ws.send(Buffer.from(Array.from({ length: 512 }, (_, i) => (i * 7919 + 13) & 0xff)))
    await raw.closed()
    await stillServed(h, witness, 'wendy')
  })

  test('a text frame closes the connection', async () => {
    const raw = await openRawWs(h.wsUrl)
    raw.ws.send('hello broker')
    await raw.closed()
    await stillServed(h, witness, 'wendy')
  })

  test('a CONNECT with a bad protocol name or level is dropped', async () => {
    for (const packet of [
      connectBytes({ protocolName: 'MQXX' }), connectBytes({ protocolName: '' }),
      connectBytes({ level: 9 }), connectBytes({ flags: 0x01 })
    ]) {
      const raw = await openRawWs(h.wsUrl)
      raw.ws.send(packet)
      await raw.closed()
      // no CONNACK 0 came back: the connection was never accepted
      const bytes = Buffer.concat(raw.received)
      assert.ok(!(bytes.length >= 4 && bytes[0] === 0x20 && bytes[3] === 0), `accepted: ${bytes.toString('hex')}`)
    }
    await stillServed(h, witness, 'wendy')
  })

  test('a PUBLISH before CONNECT is dropped and reaches nobody', async () => {
    const raw = await openRawWs(h.wsUrl)
    raw.ws.send(publishBytes('users/wendy/inbox', JSON.stringify({ id: 'forged', title: 'unauthenticated' })))
    await raw.closed()
    await sleep(200)
    assert.ok(!witness.received.some(r => r.payload.id === 'forged'))
    await stillServed(h, witness, 'wendy')
  })

  test('a second CONNECT on a connected session closes it', async () => {
    const device = await connectDevice(h.wsUrl, { clientId: 'bad-ws-twice', password: await h.token('tom') })
    const closed = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('still open')), 5_000)
      device.client.once('close', () => { clearTimeout(timer); resolve() })
    })
    ;(device.client.stream as unknown as NodeJS.WritableStream).write(connectBytes({ clientId: 'bad-ws-twice' }))
    await closed
    device.client.end(true)
    await stillServed(h, witness, 'wendy')
  })

  test('an 8 MB WebSocket frame closes that connection (ws maxPayload); others are still served', async () => {
    const raw = await openRawWs(h.wsUrl)
    raw.ws.send(Buffer.alloc(8 * 1024 * 1024, 0x30))
    const code = await raw.closed(10_000)
    assert.equal(code, 1009, `close code ${code}, expected 1009 (message too big)`)
    await stillServed(h, witness, 'wendy')
  })

  test('an 8 MB MQTT packet split into small WebSocket frames is refused once its header arrives', async () => {
    // maxPayload limits one frame; the MQTT packet length must be limited as well, or a client
    // makes the broker buffer up to 256 MB per connection, before CONNECT or after it
    const raw = await openRawWs(h.wsUrl)
    raw.ws.send(Buffer.from([0x30, 0x80, 0x80, 0x80, 0x04])) // PUBLISH, remaining length 8 MB
    raw.ws.send(Buffer.alloc(16 * 1024, 0x41))
    await raw.closed(3_000) // well before the 10 s CONNECT timeout

    const device = await connectDevice(h.wsUrl, { clientId: 'bad-ws-split', password: await h.token('bea') })
    const closed = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('still open 3 s after announcing an 8 MB packet')), 3_000)
      device.client.once('close', () => { clearTimeout(timer); resolve() })
    })
    const stream = device.client.stream as unknown as NodeJS.WritableStream
    stream.write(Buffer.from([0x30, 0x80, 0x80, 0x80, 0x04]))
    stream.write(Buffer.alloc(16 * 1024, 0x41))
    await closed
    device.client.end(true)
    await stillServed(h, witness, 'wendy')
  })

  test('a large but legitimate CONNECT (a 20 KB token) is still accepted', async () => {
    const token = craftJwt(
      { alg: 'HS256', typ: 'JWT' }, { sub: 'bea', exp: nowSeconds() + 600, pad: 'x'.repeat(20_000) }, hs256(JWT_SECRET))
    const device = await connectDevice(h.wsUrl, { clientId: 'bad-ws-large-token', password: token })
    assert.ok(device.client.connected)
    await device.close()
  })

  test('an oversized frame after a valid CONNECT also drops the connection', async () => {
    const device = await connectDevice(h.wsUrl, { clientId: 'bad-ws-big', password: await h.token('bea') })
    const closed = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('still open')), 10_000)
      device.client.once('close', () => { clearTimeout(timer); resolve() })
    })
    device.client.publish('users/bea/receipts', Buffer.alloc(8 * 1024 * 1024, 0x20), { qos: 0 })
    await closed
    device.client.end(true)
    await stillServed(h, witness, 'wendy')
  })
})

describe('plain TCP (MQTT_PORT)', () => {
  let h: TestHerald
  before(async () => { h = await startTestHerald({ env: { MQTT_PORT: '0' } }) })
  after(async () => { await h.stop() })

  test('a device connects with mqtt:// and gets its pushes; garbage there is dropped', async () => {
    const port = h.herald.mqttTcpPort
    assert.ok(port !== undefined && port > 0, 'MQTT_PORT=0 listens on a free port')
    const device = await connectDevice(`mqtt://127.0.0.1:${port}`, { clientId: 'bad-tcp-device', password: await h.token('terry') })
    try {
      await stillServed(h, device, 'terry')

      for (const garbage of [
        Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
        connectBytes({ protocolName: 'MQXX' }), publishBytes('users/terry/inbox', '{"id":"forged"}')
      ]) {
        const raw = await openRawTcp(port!)
        raw.socket.write(garbage)
        await raw.closed()
      }
      // a huge remaining length (256 MB) is refused at once, not buffered until the connect timeout
      const huge = await openRawTcp(port!)
      huge.socket.write(Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f]))
      huge.socket.write(Buffer.alloc(1024 * 1024, 0x41))
      await huge.closed(3_000)
      await sleep(100)
      assert.ok(!device.received.some(r => r.payload.id === 'forged'))
      await stillServed(h, device, 'terry')
      // WebSocket is served as well on the same server
      const ws = await connectDevice(h.wsUrl, { clientId: 'bad-tcp-ws', password: await h.token('terry') })
      await ws.close()
    } finally {
      await device.close()
    }
  })
})
