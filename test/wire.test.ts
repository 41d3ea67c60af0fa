// server/wire.ts (the answer types the server and web/ share) against openapi.yaml and the
// server's own runtime list of statuses. The records below list every value and field of a wire
// type and are checked by `npm run typecheck`: something added to a wire type fails typecheck here
// until it is listed, and then this test until openapi.yaml documents it (and the other way round).
// That the server's answers match openapi.yaml is test/openapi.test.ts' part.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import YAML from 'yaml'
import { DELIVERY_STATUSES } from '../server/store/deliveryStatus.js'
import type {
  ApiKey, Delivery, DeliveryLogPage, DeliveryLogRow, DeliveryReason, DeliveryStatus, Device, MessageDetail,
  NewApiKey, NewWebhookEndpoint, Priority, SendResult, WebhookDelivery, WebhookDeliveryList, WebhookEndpoint,
  WebhookEndpointList, WebhookEvent, WebhookEventData, WebhookEventType, WebhookPayload
} from '../server/wire.js'
import { WEBHOOK_EVENT_TYPES } from '../server/webhooks/events.js'

const doc = YAML.parse(await readFile(new URL('../openapi.yaml', import.meta.url), 'utf8'))
const schemas: Record<string, { enum?: unknown[], properties?: object, required?: string[] }> = doc.components.schemas

/** Each member of K once: with `satisfies`, a missing member and an extra one both fail typecheck. */
type Every<K extends PropertyKey> = Record<K, true>
const listed = (every: Record<string, true>): string[] => Object.keys(every).sort()

const STATUSES = {
  queued: true, sent: true, delivered: true, expired: true, replaced: true, revoked: true
} satisfies Every<DeliveryStatus>
const REASONS = {
  'ttl-ended': true,
  'connection-ended': true,
  'clean-session-ended': true,
  collapsed: true,
  'message-revoked': true,
  'device-removed': true,
  'admin-message-revoked': true,
  'admin-device-removed': true,
  'session-discarded': true
} satisfies Every<DeliveryReason>
const PRIORITIES = { normal: true, high: true } satisfies Every<Priority>
const WEBHOOK_EVENTS = {
  'message.delivered': true,
  'message.displayed': true,
  'message.opened': true,
  'message.dismissed': true,
  'message.expired': true,
  'message.replaced': true,
  'message.revoked': true,
  'device.online': true,
  'device.offline': true
} satisfies Every<WebhookEventType>

const DELIVERY_FIELDS = {
  deviceId: true,
  userId: true,
  status: true,
  reason: true,
  replacedBy: true,
  queuedAt: true,
  sentAt: true,
  deliveredAt: true,
  displayedAt: true,
  openedAt: true,
  dismissedAt: true
} satisfies Every<keyof Delivery>
const API_KEY_FIELDS = {
  id: true, name: true, prefix: true, createdAt: true, lastUsedAt: true, revokedAt: true
} satisfies Every<keyof ApiKey>

const WEBHOOK_ENDPOINT_FIELDS = {
  id: true,
  url: true,
  description: true,
  events: true,
  status: true,
  createdAt: true,
  disabledAt: true,
  disabledReason: true,
  failingSince: true,
  lastDeliveredAt: true,
  pendingDeliveries: true,
  failedDeliveries: true
} satisfies Every<keyof WebhookEndpoint>

/** openapi.yaml's schema name → the fields of the wire type it describes. */
const OBJECTS: Record<string, Record<string, true>> = {
  Delivery: DELIVERY_FIELDS,
  DeliveryLogEntry: {
    ...DELIVERY_FIELDS, messageId: true, title: true, priority: true, expiresAt: true
  } satisfies Every<keyof DeliveryLogRow>,
  DeliveryLogPage: { items: true, nextCursor: true } satisfies Every<keyof DeliveryLogPage>,
  Message: {
    id: true,
    to: true,
    title: true,
    body: true,
    data: true,
    priority: true,
    collapseKey: true,
    ttl: true,
    sentAt: true,
    expiresAt: true,
    revokedAt: true,
    recipients: true,
    apiKey: true,
    deliveries: true
  } satisfies Every<keyof MessageDetail>,
  SendResult: { id: true, recipients: true } satisfies Every<keyof SendResult>,
  Device: {
    deviceId: true, persistent: true, online: true, connectedAt: true, lastSeenAt: true, pending: true
  } satisfies Every<keyof Device>,
  ApiKey: API_KEY_FIELDS,
  NewApiKey: { ...API_KEY_FIELDS, key: true } satisfies Every<keyof NewApiKey>,
  WebhookEndpoint: WEBHOOK_ENDPOINT_FIELDS,
  NewWebhookEndpoint: { ...WEBHOOK_ENDPOINT_FIELDS, secret: true } satisfies Every<keyof NewWebhookEndpoint>,
  WebhookEndpointList: { webhooks: true } satisfies Every<keyof WebhookEndpointList>,
  WebhookDelivery: {
    id: true,
    status: true,
    createdAt: true,
    events: true,
    attempts: true,
    nextAttemptAt: true,
    failingSince: true,
    lastAttemptAt: true,
    lastStatus: true,
    lastError: true,
    lastResponse: true,
    deliveredAt: true
  } satisfies Every<keyof WebhookDelivery>,
  WebhookDeliveryList: { deliveries: true } satisfies Every<keyof WebhookDeliveryList>,
  WebhookEventData: {
    messageId: true, deviceId: true, userId: true, reason: true, replacedBy: true
  } satisfies Every<keyof WebhookEventData>,
  WebhookEvent: { id: true, type: true, timestamp: true, data: true } satisfies Every<keyof WebhookEvent>,
  WebhookPayload: { timestamp: true, events: true } satisfies Every<keyof WebhookPayload>
}

test('the delivery statuses are the same in the wire type, the server and openapi.yaml', () => {
  assert.deepEqual([...DELIVERY_STATUSES].sort(), listed(STATUSES))
  assert.equal(new Set(DELIVERY_STATUSES).size, DELIVERY_STATUSES.length)
  assert.deepEqual([...schemas.DeliveryStatus.enum!].sort(), listed(STATUSES))
})

test('the delivery reasons and priorities are the same in the wire types and openapi.yaml', () => {
  // the document's reason is nullable: null stands for "no reason" beside the reasons themselves
  assert.deepEqual(schemas.DeliveryReason.enum!.filter(r => r !== null).sort(), listed(REASONS))
  assert.deepEqual([...schemas.Priority.enum!].sort(), listed(PRIORITIES))
})

test('the webhook event types are the same in the wire type, the server and openapi.yaml', () => {
  assert.deepEqual([...WEBHOOK_EVENT_TYPES].sort(), listed(WEBHOOK_EVENTS))
  assert.deepEqual([...schemas.WebhookEventType.enum!].sort(), listed(WEBHOOK_EVENTS))
})

test('each REST answer type has exactly the fields openapi.yaml lists, all of them always present', () => {
  for (const [name, fields] of Object.entries(OBJECTS)) {
    const schema = schemas[name]
    assert.ok(schema, `openapi.yaml has no schema ${name}`)
    assert.deepEqual(Object.keys(schema.properties ?? {}).sort(), listed(fields), `${name}: properties`)
    assert.deepEqual([...schema.required ?? []].sort(), listed(fields), `${name}: required`)
  }
})
