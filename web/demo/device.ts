// How a web app receives Herald pushes: the reference integration, kept small on purpose.
//
// 1. Your backend gets a device token for the signed-in user (POST /v1/tokens, or signs a JWT
//    itself with `sub` = user id and an `exp`).
// 2. The app connects with MQTT 3.1.1 over WebSocket to wss://<herald>/mqtt, with
//    clean=false (a persistent session: messages wait while the app is away) and a clientId
//    that stays the same on this device (it names the session).
// 3. It subscribes to users/<user>/inbox with QoS 1. Each push is a JSON object; `id` is the
//    dedupe key (delivery is at-least-once).
// 4. It may report what the user saw by publishing {"id", "event"} to users/<user>/receipts,
//    event being "displayed", "opened" or "dismissed".
import mqtt, { type MqttClient } from 'mqtt'

/** What a device receives (see the README's MQTT reference). */
export interface Push {
  id: string
  title?: string
  body?: string
  data?: Record<string, unknown>
  priority: 'normal' | 'high'
  collapseKey?: string
  sentAt: string
  expiresAt: string
  /** set when the push came through a broadcast topic */
  topic?: string
}

export type ReceiptEvent = 'displayed' | 'opened' | 'dismissed'
export type DeviceStatus = 'connecting' | 'connected' | 'offline' | 'refused'

export interface DeviceOptions {
  userId: string
  token: string
  /** a stable id for this browser (see stableClientId) */
  clientId: string
  onPush: (push: Push) => void
  onStatus: (status: DeviceStatus, detail?: string) => void
  /** defaults to this page's server */
  url?: string
}

export interface Device {
  receipt: (id: string, event: ReceiptEvent) => void
  close: () => void
}

/** The MQTT endpoint of the server that served this page: ws:// on http, wss:// on https. */
export function heraldUrl (): string {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/mqtt`
}

/**
 * One clientId per user in this browser, kept in localStorage: the persistent session (and
 * the messages queued for it) is found again after a reload. A session belongs to one user, so
 * another user on the same browser gets another id.
 */
export function stableClientId (userId: string): string {
  const key = `herald-demo-client:${userId}`
  let id = localStorage.getItem(key)
  if (!id) {
    id = `web-${crypto.randomUUID()}`
    localStorage.setItem(key, id)
  }
  return id
}

export function connect (opts: DeviceOptions): Device {
  const inbox = `users/${opts.userId}/inbox`
  const receipts = `users/${opts.userId}/receipts`
  let closed = false
  const status = (s: DeviceStatus, detail?: string): void => { if (!closed) opts.onStatus(s, detail) }
  status('connecting')
  const client: MqttClient = mqtt.connect(opts.url ?? heraldUrl(), {
    protocolVersion: 4, // MQTT 3.1.1
    clientId: opts.clientId,
    clean: false, // persistent session: what arrives while we are away is kept for us
    // 3.1.1 sends a password only with a username; Herald ignores the username
    username: 'web',
    password: opts.token,
    reconnectPeriod: 3_000,
    connectTimeout: 10_000,
    // mqtt.js runs its keep-alive timer in a Worker made from a blob: URL by default, which a
    // Content-Security-Policy without `worker-src blob:` (like Herald's) refuses. Plain timers
    // work; a page in a background tab may then miss a ping and reconnect, which is harmless.
    timerVariant: 'native'
  })

  client.on('connect', () => {
    status('connected')
    // subscribing again is harmless, and covers a session the server discarded
    client.subscribe(inbox, { qos: 1 }, err => { if (err) status('refused', `subscribe failed: ${err.message}`) })
  })
  client.on('message', (_topic, payload) => {
    let push: Push
    try { push = JSON.parse(payload.toString()) as Push } catch { return }
    if (typeof push.id === 'string') opts.onPush(push)
  })
  client.on('offline', () => status('offline'))
  client.on('error', err => {
    // CONNACK refusals (bad or expired token, clientId of another user) end up here;
    // retrying with the same token cannot help, so stop
    status('refused', err.message)
    client.end(true)
  })

  return {
    receipt: (id, event) => { client.publish(receipts, JSON.stringify({ id, event }), { qos: 1 }) },
    close: () => {
      closed = true
      client.end()
    }
  }
}
