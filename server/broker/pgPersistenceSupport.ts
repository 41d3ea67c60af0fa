// The parts of PgPersistence that know nothing about SQL: the shapes aedes hands over, the untyped
// CommonJS helpers it shares with the memory store (qlobber, aedes-packet, broadcastPersistence),
// and how a packet becomes a row and back. (The orderings the store keeps on a connection pool are
// in db/batching.ts.)
import { createRequire } from 'node:module'
import { Readable } from 'node:stream'
import type { PacketColumns, PacketRow, Subscription } from '../store/mqttSessions.js'

const require = createRequire(import.meta.url)

const QLOBBER_OPTIONS = { wildcard_one: '+', wildcard_some: '#', separator: '/' }

export interface ClientRef { readonly id: string }
export interface BrokerRef { id: string }

export type { Subscription } from '../store/mqttSessions.js'

export interface IndexedSubscription {
  clientId: string
  topic: string
  qos: number
  rh?: number
  rap?: boolean
  nl?: boolean
}

export interface SubscriptionIndex {
  subscriptionsCount: number
  add: (topic: string, sub: IndexedSubscription) => void
  remove: (topic: string, sub: { clientId: string, topic: string }) => void
  match: (topic: string) => IndexedSubscription[]
  clear: () => void
}

export interface TopicMatcher {
  add: (pattern: string) => void
  test: (topic: string) => boolean
}

export interface SubscriptionBroadcast {
  brokerSubscribe: () => Promise<void>
  brokerUnsubscribe: () => Promise<void>
  addedSubscriptions: (client: ClientRef, subs: Subscription[]) => Promise<unknown>
  removedSubscriptions: (client: ClientRef, topics: string[]) => Promise<unknown>
}

// qlobber and broadcastPersistence ship no types; these are the parts of them we use
const QlobberSub: new (options: typeof QLOBBER_OPTIONS) => SubscriptionIndex = require('qlobber/aedes/qlobber-sub')
const { QlobberTrue }: { QlobberTrue: new (options: typeof QLOBBER_OPTIONS) => TopicMatcher } = require('qlobber')
const BroadcastPersistence: new (broker: BrokerRef, index: SubscriptionIndex) => SubscriptionBroadcast =
  require('aedes-persistence/broadcastPersistence.js')

/** The trie the memory store and aedes-persistence-redis match subscriptions with. */
export function newSubscriptionIndex (): SubscriptionIndex {
  return new QlobberSub(QLOBBER_OPTIONS)
}

export function newTopicMatcher (pattern: string): TopicMatcher {
  const matcher = new QlobberTrue(QLOBBER_OPTIONS)
  matcher.add(pattern)
  return matcher
}

export function newSubscriptionBroadcast (broker: BrokerRef, index: SubscriptionIndex): SubscriptionBroadcast {
  return new BroadcastPersistence(broker, index)
}

/** A packet as aedes hands it over: MQTT fields plus aedes' brokerId/brokerCounter, or anything else. */
export interface MqttPacket {
  cmd?: string
  topic?: string
  payload?: Buffer | Uint8Array | string
  qos?: number
  messageId?: number
  brokerId?: string
  brokerCounter?: number
  [field: string]: unknown
}

type PacketConstructor = new (original: object, broker?: { id: string, counter: number }) => MqttPacket

/**
 * aedes' packet wrapper (aedes-packet), reached through aedes-persistence, which is our dependency.
 * The memory store wraps outgoing and incoming packets in it; we rebuild the same shape on read.
 */
export const Packet: PacketConstructor = require('aedes-persistence').Packet

// aedes 1.x speaks MQTT 3.1.1 only, so packet fields are JSON-safe scalars; MQTT 5 `properties`
// (which may hold Buffers) would need a reviver here.
export function toColumns (packet: MqttPacket, omit?: string): PacketColumns {
  const fields: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(packet)) {
    if (key !== 'payload' && key !== omit) fields[key] = value
  }
  const payload = packet.payload
  return {
    packet: JSON.stringify(fields),
    payload: payload == null
      ? null
      : typeof payload === 'string'
        ? Buffer.from(payload, 'utf8')
        : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength),
    payloadIsText: typeof payload === 'string'
  }
}

export function fromRow (row: PacketRow): MqttPacket {
  const packet: MqttPacket = { ...row.packet }
  if (row.payload !== null) packet.payload = row.payload_is_text ? row.payload.toString('utf8') : row.payload
  return packet
}

export function payloadLength (packet: MqttPacket): number {
  const payload = packet.payload
  return payload == null ? 0 : typeof payload === 'string' ? payload.length : payload.byteLength
}

export function withMessageId (packet: MqttPacket, messageId: number | null): MqttPacket {
  if (messageId !== null) packet.messageId = messageId
  return packet
}

/** The topic levels before the first wildcard: every topic the pattern matches starts with it. */
export function literalPrefix (pattern: string): string {
  const levels = pattern.split('/')
  const wildcard = levels.findIndex(level => level === '+' || level === '#')
  return wildcard === -1 ? pattern : levels.slice(0, wildcard).join('/')
}

// Queried at call time, like the memory store's snapshot; a failure becomes the stream's error.
export function streamOf (items: Promise<unknown[]>): Readable {
  items.catch(() => {})
  return Readable.from((async function * () { yield * await items })())
}
