// A bounded fuzz of /mqtt: random and mutated MQTT packets over real WebSockets, each case on a
// fresh connection, split into WebSocket frames at random points. Whatever a connection sends,
// the server keeps answering /healthz, and a well-behaved device connected for the whole run keeps
// its connection, gets a push sent after each kind of case, and never gets anything a fuzzing
// connection published. FUZZ_SEED=<n> replays a run (fast-check prints the seed of a failure);
// FUZZ_RUNS=<n> changes the cases per kind (default 50: the file takes about 6 s alone).
import { test, after, before } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import mqttPacket, { type IConnackPacket } from 'mqtt-packet'
import { startTestHerald, type TestHerald, type TestDevice } from './helpers/herald.js'
import { device, send } from './helpers/delivery.js'
import { connectBytes, mqttString, openRawDevice, remainingLength } from './helpers/mqttBytes.js'

const RUNS = Number(process.env.FUZZ_RUNS ?? 50)
const SEED = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED)

let h: TestHerald
/** fiona's device: persistent session, connected from the first case to the last */
let witness: TestDevice
let witnessDisconnected = false
/** ids of the messages sent through the API: the only ones the witness may receive */
const sentIds = new Set<string>()
/** the fuzzing connections' own token: a valid user, just not the witness's */
let malloryToken: string

before(async () => {
  h = await startTestHerald()
  witness = await device(h, 'fiona', 'fuzz-witness', { topics: ['topics/news'] })
  witness.client.on('close', () => { witnessDisconnected = true })
  malloryToken = await h.token('mallory')
})
after(async () => {
  await witness.close()
  await h.stop()
})

/**
 * One case: a valid CONNECT of mallory's or none, then `rest`, cut into WebSocket frames. The
 * CONNECT is answered (CONNACK 0) before the rest is sent, or, `pipelined`, sent with it: aedes
 * holds what arrives while it authenticates and handles it after the CONNACK.
 */
interface Case { connect?: Buffer, pipelined?: boolean, rest: Buffer[] }

/**
 * Plays a case on a new WebSocket to /mqtt, waits until the server has dealt with it, closes
 * the connection and checks the server still answers /healthz. What "dealt with" means depends
 * on how the server's parser reads the bytes, predicted with the same parser: malformed bytes
 * must get the connection closed; after whole packets a PINGREQ is answered (aedes handles a
 * connection's packets in order) unless one of them closed it; a packet cut short is left so.
 */
async function play ({ connect, pipelined = false, rest }: Case): Promise<void> {
  const raw = await openRawDevice(h.wsUrl)
  if (connect && !pipelined) {
    raw.ws.send(connect)
    assert.equal((await raw.next('connack') as IConnackPacket).returnCode, 0)
  }
  for (const frame of connect && pipelined ? [connect, ...rest] : rest) {
    if (raw.ws.readyState === raw.ws.OPEN) raw.ws.send(frame)
  }
  const read = parsedAs(Buffer.concat([connect ?? Buffer.alloc(0), ...rest]))
  if (read === 'malformed') {
    await raw.closed()
  } else if (read === 'whole' && connect && raw.ws.readyState === raw.ws.OPEN) {
    raw.ws.send(packet(0xc0))
    await Promise.race([raw.next('pingresp'), raw.closed()]).catch(() => raw.closed())
  }
  if (raw.ws.readyState === raw.ws.OPEN) raw.ws.close()
  await raw.closed()
  const health = await fetch(`${h.url}/healthz`)
  assert.equal(health.status, 200)
}

/** How mqtt-packet's parser, as aedes uses it, reads `bytes`: whole packets, a packet cut short, or an error. */
function parsedAs (bytes: Buffer): 'whole' | 'partial' | 'malformed' {
  const parser = mqttPacket.parser()
  let malformed = false
  parser.on('error', () => { malformed = true })
  parser.parse(bytes)
  if (malformed) return 'malformed'
  const state = parser as unknown as { _stateCounter: number, _list: { length: number } }
  return state._stateCounter === 0 && state._list.length === 0 ? 'whole' : 'partial'
}

/**
 * The witness is still connected, gets a push to its user and one to a topic sent now (the topic
 * also reaches the sessions the fuzz subscribed to it), and has received nothing not sent through the API.
 */
async function witnessServed (): Promise<void> {
  assert.ok(!witnessDisconnected && witness.client.connected, 'the witness device was disconnected')
  const before = witness.received.length
  for (const to of [{ user: 'fiona' }, { topic: 'news' }]) sentIds.add((await send(h, { to, title: 'fuzz check' })).id)
  await witness.waitFor(before + 2)
  for (const message of witness.received) {
    assert.ok(sentIds.has(message.payload.id), `the witness got a message nobody sent: ${message.raw.toString()}`)
  }
}

/** Plays RUNS cases of `cases`, then checks the witness. */
async function fuzz (cases: fc.Arbitrary<{ connect?: Buffer, pipelined?: boolean, rest: Buffer }>): Promise<void> {
  const framed = fc.tuple(cases, frameCuts).map(([c, cuts]): Case => ({ ...c, rest: inFrames(c.rest, cuts) }))
  await fc.assert(fc.asyncProperty(framed, play), { numRuns: RUNS, seed: SEED })
  await witnessServed()
}

/** Where to cut the bytes into 1 to 4 WebSocket frames: the parser must resume anywhere. */
const frameCuts = fc.array(fc.nat(), { maxLength: 3 })
function inFrames (all: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map(c => c % (all.length + 1)))].sort((a, b) => a - b)
  const ends = [...points, all.length]
  return [0, ...points].map((start, i) => all.subarray(start, ends[i])).filter(frame => frame.length > 0)
}

const byte = fc.integer({ min: 0, max: 255 })
const randomBytes = (maxLength: number): fc.Arbitrary<Buffer> =>
  fc.uint8Array({ maxLength }).map(bytes => Buffer.from(bytes))
const optional = <T>(arbitrary: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> =>
  fc.option(arbitrary, { nil: undefined })
/** Mostly what is valid, sometimes anything: a case whose bytes fail the parse stops there. */
const mostly = <T>(valid: fc.Arbitrary<T>, any: fc.Arbitrary<T>): fc.Arbitrary<T> =>
  fc.oneof({ weight: 6, arbitrary: valid }, { weight: 1, arbitrary: any })

/** A CONNECT Herald accepts, as mallory. */
const validConnect = fc.record({
  clientId: fc.constantFrom('fuzz-a', 'fuzz-b', 'fuzz-c'),
  clean: fc.boolean(),
  keepalive: fc.integer({ min: 0, max: 65_535 })
}).map(fields => connectBytes({ ...fields, username: 'device', password: malloryToken }))

type Bytes = fc.Arbitrary<Buffer>
const afterConnect = (rest: Bytes): fc.Arbitrary<{ connect: Buffer, rest: Buffer }> =>
  fc.tuple(validConnect, rest).map(([connect, bytes]) => ({ connect, rest: bytes }))
const alone = (rest: Bytes): fc.Arbitrary<{ rest: Buffer }> => rest.map(bytes => ({ rest: bytes }))
const together = (packets: Bytes, maxLength = 4): Bytes =>
  fc.array(packets, { minLength: 1, maxLength }).map(list => Buffer.concat(list))

/** A packet with `header` and `body`, its remaining length right. */
const packet = (header: number, ...body: Buffer[]): Buffer => {
  const all = Buffer.concat(body)
  return Buffer.concat([Buffer.from([header]), remainingLength(all.length), all])
}
const messageId = fc.integer({ min: 0, max: 65_535 }).map(id => Buffer.from([id >> 8, id & 0xff]))

/** Topic names and filters: other users', wildcards, $SYS, U+0000, too long, or anything. */
const topics = fc.oneof(
  fc.constantFrom(
    'users/fiona/inbox', 'users/fiona/receipts', 'users/+/inbox', 'users/#', '#', '+', '/', '//', '',
    '$SYS/#', '$SYS/broker', 'topics/#', 'topics/+', 'topics/news', 'topics/news/#', 'topics/', 'topics/fuzz',
    'users/mallory/inbox', 'users/mallory/receipts', 'users/mallory/inbox\u0000', 'topics/\u0000',
    'topics/news\u0000/x', 'topics/' + 'a'.repeat(300), 'a'.repeat(10_000)
  ),
  fc.string({ unit: 'binary', maxLength: 100 })
)

/** A PUBLISH, valid or not: any topic, QoS 0–3, a forged push or receipt as payload. */
const publish = fc.record({
  topic: topics,
  qos: mostly(fc.integer({ min: 0, max: 2 }), fc.constant(3)),
  retain: fc.boolean(),
  dup: fc.boolean(),
  id: messageId,
  payload: fc.oneof(
    fc.constant(Buffer.from(JSON.stringify({ id: 'forged', title: 'forged by mallory' }))),
    fc.uuid().map(id => Buffer.from(JSON.stringify({ id, event: 'displayed' }))),
    randomBytes(200)
  )
}).map(p => packet(0x30 | (p.dup ? 0x08 : 0) | (p.qos << 1) | (p.retain ? 1 : 0),
  mqttString(p.topic), p.qos > 0 ? p.id : Buffer.alloc(0), p.payload))

/** SUBSCRIBE (header flags 0x2 as required, or not) with 1–4 odd filters, QoS mostly 0–2. */
const subscribe = fc.record({
  header: mostly(fc.constant(0x82), fc.constantFrom(0x80, 0x83)),
  id: messageId,
  filters: fc.array(fc.tuple(topics, mostly(fc.integer({ min: 0, max: 2 }), byte)), { minLength: 1, maxLength: 4 })
}).map(s => packet(s.header, s.id, ...s.filters.flatMap(([topic, qos]) => [mqttString(topic), Buffer.from([qos])])))

const unsubscribe = fc.record({ id: messageId, filters: fc.array(topics, { minLength: 1, maxLength: 4 }) })
  .map(u => packet(0xa2, u.id, ...u.filters.map(topic => mqttString(topic))))

/** PUBACK, PUBREC, PUBREL, PUBCOMP for ids the server never used; PINGREQ; DISCONNECT. */
const acks = fc.tuple(fc.constantFrom(0x40, 0x50, 0x62, 0x70), messageId).map(([header, id]) => packet(header, id))
const smallPackets = fc.oneof(acks, fc.constant(packet(0xc0)), fc.constant(packet(0xe0)))

// 60 PINGREQs: more than aedes holds (42) for a connection still authenticating
const pingFlood = Buffer.concat(Array.from({ length: 60 }, () => packet(0xc0)))
const anyPacket = fc.oneof(publish, subscribe, unsubscribe, smallPackets, fc.constant(pingFlood))

/** A byte of `bytes` changed, one inserted or deleted, or the rest cut off: lengths that lie. */
const mutation = fc.record({ at: fc.nat(), op: fc.constantFrom('flip', 'insert', 'delete', 'cut'), value: byte })
function mutate (bytes: Buffer, { at, op, value }: { at: number, op: string, value: number }): Buffer {
  const i = at % (bytes.length + 1)
  const [before, after] = [bytes.subarray(0, i), bytes.subarray(i + 1)]
  if (op === 'flip') return Buffer.concat([before, Buffer.from([(bytes[i] ?? 0) ^ (value || 1)]), after])
  if (op === 'insert') return Buffer.concat([before, Buffer.from([value]), bytes.subarray(i)])
  if (op === 'delete') return Buffer.concat([before, after])
  return before
}

test('random bytes as the first thing on a connection', async () => {
  await fuzz(alone(randomBytes(600)))
})

test('a valid CONNECT, then random bytes', async () => {
  await fuzz(afterConnect(randomBytes(600)))
})

test('CONNECTs with arbitrary fields, flags and protocol levels', async () => {
  await fuzz(alone(fc.record({
    protocolName: fc.oneof(fc.constantFrom('MQTT', 'MQIsdp'), fc.string({ maxLength: 8 })),
    level: fc.oneof(fc.constantFrom(3, 4, 5), byte),
    flags: optional(byte),
    header: optional(fc.integer({ min: 0x10, max: 0x1f })),
    clean: fc.boolean(),
    keepalive: fc.integer({ min: 0, max: 65_535 }),
    // the witness's own id among them: a CONNECT as it with mallory's token must not end its session
    clientId: fc.oneof(fc.constantFrom('fuzz-a', 'fuzz-witness', ''), fc.string({ unit: 'binary', maxLength: 140 })),
    will: optional(fc.record({ topic: topics, payload: randomBytes(50), qos: fc.nat(3), retain: fc.boolean() })),
    username: optional(fc.oneof(fc.constant('device'), fc.string({ unit: 'binary', maxLength: 20 }))),
    password: optional(fc.oneof(fc.constant(malloryToken), fc.string({ maxLength: 300 })))
  }).map(fields => connectBytes(fields))))
})

test('valid CONNECTs with bytes flipped, inserted, deleted or cut, then packets', async () => {
  const mutations = fc.array(mutation, { minLength: 1, maxLength: 5 })
  await fuzz(alone(fc.tuple(validConnect, mutations, fc.array(anyPacket, { maxLength: 2 }))
    .map(([connect, changes, packets]) => Buffer.concat([changes.reduce(mutate, connect), ...packets]))))
})

test('valid packets after CONNECT with mutated fixed headers', async () => {
  const validPackets = fc.array(fc.constantFrom(
    mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'users/mallory/inbox', qos: 1 }] }),
    packet(0x32, mqttString('users/mallory/receipts'), Buffer.from([0, 2]), Buffer.from('{}')),
    mqttPacket.generate({ cmd: 'unsubscribe', messageId: 3, unsubscriptions: ['topics/news'] }),
    mqttPacket.generate({ cmd: 'puback', messageId: 4 }),
    mqttPacket.generate({ cmd: 'pingreq' })
  ), { minLength: 1, maxLength: 4 })
  await fuzz(afterConnect(fc.tuple(validPackets, fc.nat(), byte).map(([packets, which, header]) => {
    const mutated = packets.map(p => Buffer.from(p))
    mutated[which % mutated.length]![0] = header
    return Buffer.concat(mutated)
  })))
})

test('truncated and huge remaining lengths', async () => {
  const lengths = fc.oneof(
    // 256 MB, a fifth length byte, five continuation bytes, a continuation with nothing after it
    fc.constantFrom([0xff, 0xff, 0xff, 0x7f], [0xff, 0xff, 0xff, 0xff, 0x01], [0x80, 0x80, 0x80, 0x80, 0x80], [0x80]),
    fc.array(byte, { minLength: 1, maxLength: 5 })
  )
  await fuzz(afterConnect(fc.tuple(byte, lengths, randomBytes(300))
    .map(([header, length, body]) => Buffer.from([header, ...length, ...body]))))
})

test('SUBSCRIBE and UNSUBSCRIBE with odd topic filters', async () => {
  await fuzz(afterConnect(together(fc.oneof(subscribe, unsubscribe))))
})

test('PUBLISH to forbidden topics, acknowledgements of unknown ids', async () => {
  await fuzz(afterConnect(together(fc.oneof(publish, smallPackets))))
})

test('any mix of packets, with no CONNECT, after one, or sent with one before its CONNACK', async () => {
  await fuzz(fc.tuple(optional(validConnect), fc.boolean(), together(anyPacket, 6))
    .map(([connect, pipelined, rest]) => ({ connect, pipelined, rest })))
})
