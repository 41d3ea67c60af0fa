// The admin UI's client for /admin/api. The session is an HttpOnly cookie the page cannot
// read; writes carry the session's CSRF token (from login or GET /admin/api/session).

export type DeliveryStatus = 'queued' | 'sent' | 'delivered' | 'expired' | 'replaced' | 'revoked'
export const STATUSES: DeliveryStatus[] = ['queued', 'sent', 'delivered', 'expired', 'replaced', 'revoked']

export interface Overview {
  at: string
  devicesOnline: number
  waiting: number
  expiredLastDay: number
  latency: { windowMinutes: number, p50: number | null, p95: number | null, samples: number }
  lastHour: { minutes: number[], accepted: number[], delivered: number[], p50: Array<number | null>, p95: Array<number | null> }
}

export interface LogRow {
  id: string
  title: string | null
  priority: string
  acceptedAt: string
  expiresAt: string
  revokedAt: string | null
  sender: string | null
  target: { kind: 'user' | 'users' | 'topic', user?: string, topic?: string, users?: string[], userCount?: number }
  recipients: number
  delivered: number
  counts: Record<DeliveryStatus, number>
  slowest: { deviceId: string, ms: number } | null
}

/** Why a delivery was expired, replaced or revoked, as the server records it. */
export const REASONS = {
  'ttl-ended': 'its TTL ended before it was delivered',
  'connection-ended': 'a ttl 0 message: the connection ended first',
  'clean-session-ended': 'the clean session it was for ended',
  collapsed: 'a newer message with the same collapseKey took its place before it was written',
  'message-revoked': 'revoked by DELETE /v1/messages',
  'device-removed': 'the device session was ended by DELETE /v1/devices',
  'admin-message-revoked': 'revoked in the admin UI',
  'admin-device-removed': 'the device session was ended in the admin UI',
  'session-discarded': 'the device reconnected with a clean session, discarding its persistent one'
} as const
export type DeliveryReason = keyof typeof REASONS

export interface Timeline {
  deviceId: string
  userId: string
  status: DeliveryStatus
  reason: DeliveryReason | null
  /** for `replaced`: the message that took its place */
  replacedBy: string | null
  queuedAt: string
  sentAt: string | null
  deliveredAt: string | null
  displayedAt: string | null
  openedAt: string | null
  dismissedAt: string | null
  expiresAt: string
}

export interface MessageDetail {
  id: string
  target: { user?: string, users?: string[], topic?: string }
  title: string | null
  body: string | null
  data: Record<string, unknown> | null
  priority: string
  collapseKey: string | null
  ttl: number
  acceptedAt: string
  expiresAt: string
  revokedAt: string | null
  recipients: number
  sender: string
  sentFromAdminUi: boolean
  senderKeyRevoked: boolean
  counts: Record<DeliveryStatus, number>
  deliveries: Timeline[]
  total: number
}

export interface Device { deviceId: string, persistent: boolean, online: boolean, connectedAt: string | null, lastSeenAt: string | null, pending: number }
export interface UserHit { userId: string, devices: number, online: number, lastSeenAt: string | null }
export interface ApiKey { id: string, name: string, prefix: string, createdAt: string, lastUsedAt: string | null, revokedAt: string | null }

/** A problem+json answer from the server, with its stable code. */
export class ApiError extends Error {
  constructor (readonly status: number, readonly code: string, detail: string) {
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
  const res = await fetch(`/admin/api${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' })
  if (res.status === 204) return undefined as T
  const text = await res.text()
  let json: any
  try { json = text ? JSON.parse(text) : undefined } catch { json = undefined }
  if (!res.ok) {
    if (res.status === 401 && path !== '/login') for (const l of unauthorizedListeners) l()
    throw new ApiError(res.status, json?.code ?? 'http', json?.detail ?? `${res.status} ${res.statusText}`)
  }
  return json as T
}

export function query (params: Record<string, string | undefined>): string {
  const q = new URLSearchParams()
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, v)
  const s = q.toString()
  return s ? `?${s}` : ''
}
