import { randomUUID } from 'node:crypto'
import type { AedesOptions, Client, ConnectPacket } from 'aedes'
import type { DeviceTokens } from '../auth/deviceTokens.js'
import { TokenError } from '../auth/deviceTokens.js'
import { BROADCAST_PREFIX, MAX_ID_LENGTH, inboxTopic, isUuid, isValidTopicName, receiptsTopic } from '../ids.js'
import type { Logger } from '../log.js'
import type { ReceiptEvent } from '../store/deliveries.js'

// CONNACK return codes, MQTT 3.1.1 §3.2.2.3
const IDENTIFIER_REJECTED = 2
const SERVER_UNAVAILABLE = 3
const BAD_USERNAME_OR_PASSWORD = 4
const NOT_AUTHORIZED = 5

/**
 * The longest keep-alive a connection gets, in seconds: 20 minutes. A device may ask for any, 0
 * (off) included [MQTT-3.1.2-10]; 0 and anything longer count as this, so a connection nothing
 * arrives from for 1.5 times this (30 minutes) is closed [MQTT-3.1.2-24]. Otherwise a device
 * that vanished (phone off the network, NAT mapping dropped) and is sent nothing would leave a
 * half-open connection holding its session "online" for ever; a server may drop an inactive
 * client at any time (3.1.1 §3.1.2.10). Not WebSocket pings from the server: Eclipse Paho's
 * Java client (1.2.5) closes its connection on a ping frame (paho.mqtt.java#912).
 */
export const MAX_KEEPALIVE_S = 1_200

/** What Herald remembers about an authenticated connection. */
export interface DeviceIdentity {
  userId: string
  /** this connection (devices.connection_id): its end clears the device's record only if still current */
  connectionId: string
  /** token expiry, ms since the epoch */
  expiresAt: number
}

const identities = new WeakMap<Client, DeviceIdentity>()
export const identityOf = (client: Client): DeviceIdentity | undefined => identities.get(client)

/** connections whose CONNECT had an empty client id where MQTT forbids one: refused in authenticate */
const emptyIdsRefused = new WeakSet<Client>()

export interface HookDeps {
  tokens: DeviceTokens
  log: Logger
  /** records the device as connected for this user; false when the id belongs to another user */
  claimDevice: (deviceId: string, userId: string, persistent: boolean, connectionId: string) => Promise<{ ok: boolean }>
  recordReceipt: (receipt: { messageId: string, deviceId: string, event: ReceiptEvent }) => Promise<void>
  /**
   * records a granted broadcast subscription (topics/<name>) so that topic messages sent through
   * any process count it; resolved before the SUBACK
   */
  recordBroadcastSubscription: (deviceId: string, topic: string) => Promise<void>
  onAuthFailure?: (reason: string) => void
  /** tests shorten it; MAX_KEEPALIVE_S otherwise */
  maxKeepaliveSeconds?: number
}

function refuse (returnCode: number, message: string): Error & { returnCode: number } {
  return Object.assign(new Error(message), { returnCode })
}

const RECEIPT_EVENTS = new Set<string>(['displayed', 'opened', 'dismissed'])

type BrokerHooks =
  Pick<AedesOptions, 'preConnect' | 'authenticate' | 'authorizeSubscribe' | 'authorizePublish' | 'authorizeForward'>

/**
 * The broker's access rules. aedes allows everything by default, so every hook is set:
 * a device proves its user with a JWT, subscribes only to its inbox and to broadcast
 * topics, and publishes only receipts.
 */
export function createHooks (deps: HookDeps): BrokerHooks {
  const { tokens, log } = deps
  const fail = (reason: string): void => deps.onAuthFailure?.(reason)
  const maxKeepalive = deps.maxKeepaliveSeconds ?? MAX_KEEPALIVE_S

  return {
    preConnect (client, packet, done) {
      const violation = connectViolation(packet)
      if (violation) {
        // a protocol violation closes the connection without a CONNACK [MQTT-4.8.0-1]
        log.info({ violation }, 'malformed CONNECT; disconnecting')
        return done(new Error(violation), false)
      }
      // aedes makes up an id for an empty one: right for a 3.1.1 clean session [MQTT-3.1.3-6], but
      // a persistent session must get CONNACK 2 [MQTT-3.1.3-8] (it could never be resumed), and
      // MQTT 3.1 requires 1 to 23 characters. aedes sends a CONNACK code for authenticate only.
      if (packet.clientId === '' && (!packet.clean || packet.protocolVersion === 3)) emptyIdsRefused.add(client)
      // aedes times the keep-alive from this packet, after this hook
      if (!packet.keepalive || packet.keepalive > maxKeepalive) packet.keepalive = maxKeepalive
      done(null, true)
    },

    authenticate (client, _username, password, done) {
      if (emptyIdsRefused.has(client)) {
        fail('empty-client-id')
        return done(refuse(IDENTIFIER_REJECTED, 'a persistent session needs a client id'), false)
      }
      // username is ignored: the token says who the device belongs to
      if (client.id.length > MAX_ID_LENGTH) {
        fail('client-id-too-long')
        return done(refuse(IDENTIFIER_REJECTED, `client id longer than ${MAX_ID_LENGTH} characters`), false)
      }
      if (!password || password.length === 0) {
        fail('no-token')
        return done(refuse(BAD_USERNAME_OR_PASSWORD, 'password must be a device token'), false)
      }
      let claims
      try {
        claims = tokens.verify(password.toString('utf8'))
      } catch (err) {
        const reason = err instanceof TokenError ? err.reason : 'malformed'
        fail(reason)
        log.info({ deviceId: client.id, reason }, 'device token refused')
        return done(refuse(BAD_USERNAME_OR_PASSWORD, (err as Error).message), false)
      }
      const connectionId = randomUUID()
      deps.claimDevice(client.id, claims.sub, !client.clean, connectionId).then(result => {
        if (!result.ok) {
          fail('device-owned-by-another-user')
          log.warn({ deviceId: client.id, userId: claims.sub }, 'device id belongs to another user; refused')
          return done(refuse(NOT_AUTHORIZED, 'this client id belongs to another user'), false)
        }
        identities.set(client, { userId: claims.sub, connectionId, expiresAt: claims.exp * 1000 })
        done(null, true)
      }, err => {
        fail('database-unavailable')
        log.error({ err, deviceId: client.id }, 'device registry unavailable')
        done(refuse(SERVER_UNAVAILABLE, 'server unavailable'), false)
      })
    },

    authorizeSubscribe (client, sub, done) {
      const granted = grantedSubscription(client, sub)
      if (!granted) {
        log.info({ deviceId: client.id, userId: identities.get(client)?.userId, topic: sub.topic },
          'subscription refused')
        return done(null, null) // SUBACK 0x80 for this topic, the others stand
      }
      if (!granted.topic.startsWith(BROADCAST_PREFIX)) return done(null, granted)
      deps.recordBroadcastSubscription(client.id, granted.topic).then(() => done(null, granted), err => {
        // not recorded, it would count for nothing: refused (SUBACK 0x80) rather than granted in name only
        log.warn({ deviceId: client.id, topic: granted.topic, err: (err as Error).message },
          'recording a subscription failed')
        done(null, null)
      })
    },

    authorizePublish (client, packet, done) {
      const identity = client ? identities.get(client) : undefined
      if (!client || !identity || packet.topic !== receiptsTopic(identity.userId)) {
        log.info({ deviceId: client?.id, topic: packet.topic }, 'publish refused; disconnecting')
        const allowed = identity ? receiptsTopic(identity.userId) : 'their receipts topic'
        return done(new Error(`devices may only publish to ${allowed}`))
      }
      const receipt = parseReceipt(packet.payload)
      if (!receipt) {
        // a malformed receipt is the app's bug: acknowledge and drop it rather than cut the push channel
        log.warn({ deviceId: client.id, userId: identity.userId },
          'malformed receipt ignored; ' +
          'expected {"id": "...", "event": "displayed" | "opened" | "dismissed"}')
        return done(null)
      }
      // nothing a device publishes is kept for later subscribers
      packet.retain = false
      // the PUBACK goes out once the receipt is committed
      deps.recordReceipt({ ...receipt, deviceId: client.id }).then(() => done(null), err => done(err))
    },

    authorizeForward (client, packet) {
      // Herald writes pushes itself (delivery/engine.ts); the broker forwards nothing but what a
      // device may see anyway: its own inbox and broadcast topics.
      const identity = identities.get(client)
      if (!identity) return null
      return packet.topic === inboxTopic(identity.userId) || packet.topic.startsWith(BROADCAST_PREFIX) ? packet : null
    }
  }
}

/**
 * What a device may subscribe to: its own inbox and broadcast topics, at most at QoS 1 (Herald
 * sends pushes at QoS 1; QoS 2 would cost a round trip more for nothing). null when refused.
 */
export function grantedSubscription<S extends { topic: string, qos: number }> (client: Client, sub: S): S | null {
  const identity = identities.get(client)
  const topic = sub.topic
  const allowed = identity !== undefined && (
    topic === inboxTopic(identity.userId) ||
    (topic.startsWith(BROADCAST_PREFIX) && isValidTopicName(topic.slice(BROADCAST_PREFIX.length))))
  return allowed ? { ...sub, qos: Math.min(sub.qos, 1) } : null
}

/**
 * What makes a CONNECT break MQTT 3.1.1 although mqtt-packet parsed it (it checks the reserved
 * flag, the will flags without a will, the protocol name), or undefined.
 */
function connectViolation (packet: ConnectPacket): string | undefined {
  // [MQTT-1.5.3-2]; and Postgres cannot store U+0000 in a device id
  if ([packet.clientId, packet.username, packet.will?.topic].some(text => text?.includes('\u0000'))) {
    return 'U+0000 in a string'
  }
  // [MQTT-3.1.2-14]
  if ((packet.will?.qos ?? 0) > 2) return 'will QoS 3'
  // [MQTT-3.1.2-22] (MQTT 3.1 did not require it)
  if (packet.protocolVersion === 4 && packet.password !== undefined && packet.username === undefined) {
    return 'password without a user name'
  }
  return undefined
}

function parseReceipt (payload: Buffer | string): { messageId: string, event: ReceiptEvent } | undefined {
  if (payload.length > 1024) return undefined
  try {
    const value = JSON.parse(payload.toString()) as { id?: unknown, event?: unknown }
    if (typeof value?.id !== 'string' || !isUuid(value.id)) return undefined
    if (typeof value.event !== 'string' || !RECEIPT_EVENTS.has(value.event)) return undefined
    return { messageId: value.id.toLowerCase(), event: value.event as ReceiptEvent }
  } catch {
    return undefined
  }
}
