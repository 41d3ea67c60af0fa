// What Herald's HTTP answers carry (the REST API under /v1 and the admin UI's /admin/api), in
// one place for both sides: the server's store and routes build these objects, and the web front
// end (web/admin/api.ts) imports them with `import type`, so a field renamed or a status added on
// one side fails typecheck on the other. openapi.yaml describes the REST ones in prose and JSON
// Schema; test/wire.test.ts checks that it lists the same fields and values as these types.
//
// Types only, and no imports: the browser build takes nothing from this file.
//
// Times are `Date` here, as the server holds them before `res.json`. JSON.stringify writes a Date
// as its ISO 8601 text (Date.prototype.toJSON), so what a client parses is `Json<T>`: the same
// shape with every Date a string. The web side reads `Json<Overview>`, never `Overview`.

/**
 * A T as JSON.parse returns it after JSON.stringify: each Date becomes its ISO 8601 text, e.g.
 * '2026-01-31T12:00:00.000Z'; arrays and objects are mapped member by member; other values are
 * unchanged. (The types below hold no functions or undefined members, which JSON would drop.)
 */
export type Json<T> =
  T extends Date ? string
    : T extends ReadonlyArray<infer Item> ? Array<Json<Item>>
      : T extends object ? { [K in keyof T]: Json<T[K]> }
        : T

// ---- delivery states ----

/** A delivery's status as read (store/deliveryStatus.ts: an undelivered one past its TTL reads `expired`). */
export type DeliveryStatus = 'queued' | 'sent' | 'delivered' | 'expired' | 'replaced' | 'revoked'

/** Why a delivery is `expired` (migrations/0004_delivery_reasons.sql). */
export type ExpiredReason = 'ttl-ended' | 'connection-ended' | 'clean-session-ended'
/** Why a delivery is `replaced`: a newer message with the same collapseKey (its `replacedBy`) took its place. */
export type ReplacedReason = 'collapsed'
/** Why a delivery is `revoked`: by the REST API, by the admin UI, or a clean connect over a persistent session. */
export type RevokedReason =
  | 'message-revoked' | 'device-removed' | 'admin-message-revoked' | 'admin-device-removed' | 'session-discarded'
/** Why a delivery ended as it did; null while it is queued, sent or delivered. */
export type DeliveryReason = ExpiredReason | ReplacedReason | RevokedReason

/** What a device reports about a message it received (MQTT, `users/{sub}/receipts`). */
export type ReceiptEvent = 'displayed' | 'opened' | 'dismissed'

// ---- messages (REST) ----

export type Priority = 'normal' | 'high'

/** Who a message is for: exactly one of a user, a list of users (without duplicates), a topic. */
export type MessageTarget =
  | { user: string }
  | { users: string[] }
  | { topic: string }

/** `202` of POST /v1/messages (and each item of a batch's answer; the admin UI's test push too). */
export interface SendResult {
  id: string
  /** the devices it was queued for */
  recipients: number
}

/** A message's delivery to one device: an item of MessageDetail.deliveries (openapi: Delivery). */
export interface Delivery {
  deviceId: string
  userId: string
  status: DeliveryStatus
  /** why it was expired, replaced or revoked (null otherwise) */
  reason: DeliveryReason | null
  /** for `replaced`: the message that took its place */
  replacedBy: string | null
  queuedAt: Date
  sentAt: Date | null
  deliveredAt: Date | null
  displayedAt: Date | null
  openedAt: Date | null
  dismissedAt: Date | null
}

/** GET /v1/messages/{id} (openapi: Message). */
export interface MessageDetail {
  id: string
  to: MessageTarget
  title: string | null
  body: string | null
  data: Record<string, unknown> | null
  priority: Priority
  collapseKey: string | null
  ttl: number
  /** when it was accepted: the `sentAt` devices receive */
  sentAt: Date
  expiresAt: Date
  revokedAt: Date | null
  recipients: number
  /** the name of the API key that sent it; null when sent from the admin UI */
  apiKey: string | null
  /** one per target device, by user then device */
  deliveries: Delivery[]
}

/** A row of the REST delivery log, GET /v1/messages: a delivery and some of its message (openapi: DeliveryLogEntry). */
export interface DeliveryLogRow extends Delivery {
  messageId: string
  title: string | null
  priority: Priority
  expiresAt: Date
}

/** GET /v1/messages (openapi: DeliveryLogPage). */
export interface DeliveryLogPage {
  items: DeliveryLogRow[]
  /** pass as `cursor` for the next, older page; null after the last one */
  nextCursor: string | null
}

// ---- devices and API keys (REST, also used by the admin UI) ----

/** An item of GET /v1/users/{user}/devices (openapi: Device). */
export interface Device {
  deviceId: string
  /** it holds a persistent session, so messages wait for it while it is offline */
  persistent: boolean
  online: boolean
  connectedAt: Date | null
  lastSeenAt: Date | null
  /** deliveries waiting for it (queued or sent, not past their TTL) */
  pending: number
}

/** An item of GET /v1/api-keys (openapi: ApiKey). */
export interface ApiKey {
  id: string
  name: string
  /** the key's first characters, to tell keys apart */
  prefix: string
  createdAt: Date
  lastUsedAt: Date | null
  revokedAt: Date | null
}

/** POST /v1/api-keys: the new key, with its secret shown only in this answer (openapi: NewApiKey). */
export interface NewApiKey extends ApiKey {
  key: string
}

// ---- the admin UI (/admin/api) ----

/** A row of the admin's delivery log (GET /admin/api/log): one message and its deliveries summed up. */
export interface AdminMessageRow {
  id: string
  title: string | null
  priority: Priority
  acceptedAt: Date
  expiresAt: Date
  revokedAt: Date | null
  /** the API key's name; null when sent from the admin UI */
  sender: string | null
  /** a multi-user target lists its first few users and says how many there are */
  target: { kind: 'user' | 'users' | 'topic', user?: string, topic?: string, users?: string[], userCount?: number }
  recipients: number
  /** devices that acknowledged it (PUBACK or a receipt) */
  delivered: number
  counts: Record<DeliveryStatus, number>
  /** the delivered device that took longest from accept to PUBACK */
  slowest: { deviceId: string, ms: number } | null
}

/** GET /admin/api/log. */
export interface AdminLogPage {
  items: AdminMessageRow[]
  /** the cursor of the next, older page; null after the last one */
  next: string | null
}

/** One device's delivery of a message on the admin's message page: a Delivery and the message's expiry. */
export interface DeviceTimeline extends Delivery {
  expiresAt: Date
}

/** GET /admin/api/messages/{id}, and the live channel's `message` event for a watched message. */
export interface AdminMessageDetail {
  id: string
  target: MessageTarget
  title: string | null
  body: string | null
  data: Record<string, unknown> | null
  priority: Priority
  collapseKey: string | null
  ttl: number
  acceptedAt: Date
  expiresAt: Date
  revokedAt: Date | null
  recipients: number
  /** the API key's name, or 'admin UI' */
  sender: string
  sentFromAdminUi: boolean
  senderKeyRevoked: boolean
  counts: Record<DeliveryStatus, number>
  /** some of the devices: undelivered ones first, then by user and device */
  deliveries: DeviceTimeline[]
  /** how many deliveries there are in all */
  total: number
}

/** Per-minute figures of the last hour, oldest first; every minute is present, quiet ones as 0. */
export interface MinuteSeries {
  /** unix seconds of each minute's start */
  minutes: number[]
  accepted: number[]
  delivered: number[]
  /** accept -> PUBACK in ms of the deliveries acknowledged in that minute; null when none */
  p50: Array<number | null>
  p95: Array<number | null>
}

/** GET /admin/api/overview, and the live channel's `overview` event. */
export interface Overview {
  at: Date
  devicesOnline: number
  /** Herald processes running on this database (the Nodes page lists them) */
  nodesRunning: number
  /** per-device queue entries still waiting for their device (queued or sent, not past the TTL) */
  waiting: number
  expiredLastDay: number
  latency: { windowMinutes: number, p50: number | null, p95: number | null, samples: number }
  lastHour: MinuteSeries
}

/** An item of GET /admin/api/users?prefix=: a user known from their devices. */
export interface UserSummary {
  userId: string
  devices: number
  online: number
  lastSeenAt: Date | null
}

/** A Herald process on this database, as the admin's Nodes page shows it: a row of `nodes` (migrations/0007). */
export interface NodeSummary {
  id: string
  /** the Herald version it runs (package.json); null on a row older than migration 0007 */
  version: string | null
  hostname: string | null
  /** its operating system process id */
  pid: number | null
  /** device connections it held at its last heartbeat */
  connections: number
  startedAt: Date
  heartbeatAt: Date
  /** when it stopped, or was found dead; null while it runs */
  goneAt: Date | null
  /** it runs the cluster's chores now: its listener connection holds their advisory lock */
  leader: boolean
}

/** GET /admin/api/nodes. */
export interface NodeList {
  /** the database's clock when this was read (heartbeats are its times too): ages are measured from it */
  at: Date
  /** the node that answered this request */
  servedBy: string
  /** running ones first, then gone ones, newest first */
  nodes: NodeSummary[]
}

// ---- webhooks (REST /v1/webhooks and the admin UI's Webhooks page) ----

/** What a webhook endpoint can ask for (README "Webhooks"). */
export type WebhookEventType =
  | 'message.delivered' | 'message.displayed' | 'message.opened' | 'message.dismissed'
  | 'message.expired' | 'message.replaced' | 'message.revoked'
  | 'device.online' | 'device.offline'

/** A registered endpoint (openapi: WebhookEndpoint). */
export interface WebhookEndpoint {
  id: string
  url: string
  description: string | null
  events: WebhookEventType[]
  /**
   * `disabled` after failing for the whole retry window: nothing is sent to it then, and its events
   * are kept (up to 3 days) and sent once it is enabled again
   */
  status: 'enabled' | 'disabled'
  createdAt: Date
  disabledAt: Date | null
  disabledReason: string | null
  /** the first failed attempt of the batch it is retrying now; null while it is healthy */
  failingSince: Date | null
  lastDeliveredAt: Date | null
  /** batches waiting to be sent (retried or new) */
  pendingDeliveries: number
  /** batches that failed for the whole retry window; each can be replayed */
  failedDeliveries: number
}

/** POST /v1/webhooks: the new endpoint, its signing secret shown only in this answer (openapi: NewWebhookEndpoint). */
export interface NewWebhookEndpoint extends WebhookEndpoint {
  /** `whsec_` and the base64 of the HMAC key, as Standard Webhooks libraries take it */
  secret: string
}

/** GET /v1/webhooks. */
export interface WebhookEndpointList {
  webhooks: WebhookEndpoint[]
}

/** One POST of a batch of events to an endpoint, and its attempts (openapi: WebhookDelivery). */
export interface WebhookDelivery {
  /** the `webhook-id` header: the same on every attempt */
  id: string
  status: 'pending' | 'delivered' | 'failed'
  createdAt: Date
  /** how many events it carries */
  events: number
  attempts: number
  /** when it is tried next; null once delivered or failed */
  nextAttemptAt: Date | null
  failingSince: Date | null
  lastAttemptAt: Date | null
  /** the HTTP status of the last answer; null when there was none (refused, timed out) */
  lastStatus: number | null
  /** why the last attempt failed, when it did */
  lastError: string | null
  /** the start of the last answer's body */
  lastResponse: string | null
  deliveredAt: Date | null
}

/** GET /v1/webhooks/{id}/deliveries: newest first. */
export interface WebhookDeliveryList {
  deliveries: WebhookDelivery[]
}

/** What an event says: the message (for message.*), the device and its user, and why for a final state. */
export interface WebhookEventData {
  messageId: string | null
  deviceId: string
  userId: string
  /** message.expired, message.replaced and message.revoked: why (DeliveryReason); null otherwise */
  reason: DeliveryReason | null
  /** message.replaced: the message that took its place */
  replacedBy: string | null
}

/** One event, in the Standard Webhooks envelope (openapi: WebhookEvent). */
export interface WebhookEvent {
  /** unique and stable: a receiver that sees an id twice has seen the event before */
  id: string
  type: WebhookEventType
  /** when it happened */
  timestamp: Date
  data: WebhookEventData
}

/** The body of each POST to an endpoint: its events in the order they happened (openapi: WebhookPayload). */
export interface WebhookPayload {
  /** when the batch was formed */
  timestamp: Date
  events: WebhookEvent[]
}
