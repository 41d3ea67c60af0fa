// The admin UI's client for /admin/api. The session is an HttpOnly cookie the page cannot
// read; writes carry the session's CSRF token (from login or GET /admin/api/session).

import type * as wire from '../../server/wire'

// The answers' types are the server's own (server/wire.ts), as JSON: times arrive as ISO strings.
export type { DeliveryReason, DeliveryStatus } from '../../server/wire'
export type Overview = wire.Json<wire.Overview>
export type AdminLogPage = wire.Json<wire.AdminLogPage>
export type AdminMessageRow = wire.Json<wire.AdminMessageRow>
export type AdminMessageDetail = wire.Json<wire.AdminMessageDetail>
export type DeviceTimeline = wire.Json<wire.DeviceTimeline>
export type Device = wire.Json<wire.Device>
export type UserSummary = wire.Json<wire.UserSummary>
export type ApiKey = wire.Json<wire.ApiKey>
export type NewApiKey = wire.Json<wire.NewApiKey>
export type NodeSummary = wire.Json<wire.NodeSummary>
export type NodeList = wire.Json<wire.NodeList>
export type WebhookEventType = wire.WebhookEventType
export type WebhookEndpoint = wire.Json<wire.WebhookEndpoint>
export type NewWebhookEndpoint = wire.Json<wire.NewWebhookEndpoint>
export type WebhookEndpointList = wire.Json<wire.WebhookEndpointList>
export type WebhookDelivery = wire.Json<wire.WebhookDelivery>
export type WebhookDeliveryList = wire.Json<wire.WebhookDeliveryList>
export type SendResult = wire.SendResult

/**
 * The statuses in the order the UI lists them; a record, so that a status the server adds fails
 * typecheck here until it has its place.
 */
const STATUS_ORDER: Record<wire.DeliveryStatus, true> = {
  queued: true, sent: true, delivered: true, expired: true, replaced: true, revoked: true
}
export const STATUSES = Object.keys(STATUS_ORDER) as wire.DeliveryStatus[]

/**
 * Why a delivery was expired, replaced or revoked, in words. A reason the server adds fails
 * typecheck here until it is explained.
 */
export const REASONS: Record<wire.DeliveryReason, string> = {
  'ttl-ended': 'its TTL ended before it was delivered',
  'connection-ended': 'a ttl 0 message: the connection ended first',
  'clean-session-ended': 'the clean session it was for ended',
  collapsed: 'a newer message with the same collapseKey took its place before it was written',
  'message-revoked': 'revoked by DELETE /v1/messages',
  'device-removed': 'the device session was ended by DELETE /v1/devices',
  'admin-message-revoked': 'revoked in the admin UI',
  'admin-device-removed': 'the device session was ended in the admin UI',
  'session-discarded': 'the device reconnected with a clean session, discarding its persistent one'
}

/**
 * What each webhook event type means, in the order the docs list them; a record, so that a type
 * the server adds fails typecheck here until it is explained.
 */
export const WEBHOOK_EVENTS: Record<wire.WebhookEventType, string> = {
  'message.delivered': 'a device acknowledged a message',
  'message.displayed': 'a device showed it (receipt)',
  'message.opened': 'the user opened it (receipt)',
  'message.dismissed': 'the user dismissed it (receipt)',
  'message.expired': 'it ended undelivered: its TTL or its session ran out',
  'message.replaced': 'a newer message with its collapseKey took its place',
  'message.revoked': 'it, or its device session, was removed before delivery',
  'device.online': "a device's connection began",
  'device.offline': "a device's connection ended"
}
export const WEBHOOK_EVENT_TYPES = Object.keys(WEBHOOK_EVENTS) as wire.WebhookEventType[]

/** One field of a refused request (problem+json `errors[]`), e.g. `url` or `events[0]`. */
export interface FieldProblem { field: string, message: string }

/** A problem+json answer from the server, with its stable code and, for a 400, the fields at fault. */
export class ApiError extends Error {
  constructor (readonly status: number, readonly code: string, detail: string, readonly fields: FieldProblem[] = []) {
    super(detail)
  }
}

let csrfToken: string | undefined
const unauthorizedListeners = new Set<() => void>()

export function setCsrfToken (token: string | undefined): void {
  csrfToken = token
}

/** Called when any request finds the session gone, so the app can show the login form. */
export function onUnauthorized (listener: () => void): () => void {
  unauthorizedListeners.add(listener)
  return () => { unauthorizedListeners.delete(listener) }
}

export async function api<T> (method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' }
  if (body !== undefined) headers['content-type'] = 'application/json'
  if (method !== 'GET' && csrfToken) headers['x-herald-csrf'] = csrfToken
  const res = await fetch(`/admin/api${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin'
  })
  if (res.status === 204) return undefined as T
  const text = await res.text()
  let json: any
  try { json = text ? JSON.parse(text) : undefined } catch { json = undefined }
  if (!res.ok) {
    if (res.status === 401 && path !== '/login') for (const l of unauthorizedListeners) l()
    const fields = Array.isArray(json?.errors) ? json.errors as FieldProblem[] : []
    throw new ApiError(res.status, json?.code ?? 'http', json?.detail ?? `${res.status} ${res.statusText}`, fields)
  }
  return json as T
}

export function query (params: Record<string, string | undefined>): string {
  const q = new URLSearchParams()
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, v)
  const s = q.toString()
  return s ? `?${s}` : ''
}
