// Helpers for delivery behaviour tests: sending, and waiting for states a user can observe over
// REST (a delivery's status, a device shown offline). Each wait polls with a deadline; none sleeps.
import assert from 'node:assert/strict'
import { connectDevice, type TestDevice, type TestHerald } from './herald.js'

/**
 * Calls `probe` until it returns something other than undefined/false, or fails after
 * `timeoutMs` with `what` and the last value seen.
 */
export async function waitUntil<T> (
  what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 10_000, intervalMs = 20
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    const value = await probe()
    if (value !== undefined && value !== false) return value
    last = value
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${JSON.stringify(last)})`)
    }
    await new Promise(resolve => setTimeout(resolve, intervalMs))
  }
}

/** POST /v1/messages; asserts 202 and returns `{id, recipients}`. */
export async function send (
  h: TestHerald, body: Record<string, unknown>, headers?: Record<string, string>
): Promise<{ id: string, recipients: number }> {
  const res = await h.api('/v1/messages', { body, headers })
  assert.equal(res.status, 202, `send failed: ${res.status} ${JSON.stringify(res.body)}`)
  return res.body
}

/** GET /v1/messages/{id}; asserts 200. */
export async function getMessage (h: TestHerald, id: string): Promise<any> {
  const res = await h.api(`/v1/messages/${id}`)
  assert.equal(res.status, 200, `GET /v1/messages/${id}: ${res.status} ${JSON.stringify(res.body)}`)
  return res.body
}

/** The delivery row of `deviceId` in GET /v1/messages/{id}, or undefined. */
export async function deliveryOf (h: TestHerald, id: string, deviceId: string): Promise<any> {
  const message = await getMessage(h, id)
  return message.deliveries.find((d: { deviceId: string }) => d.deviceId === deviceId)
}

/** Polls GET /v1/messages/{id} until the delivery to `deviceId` has `status`; returns that row. */
export function waitForStatus (
  h: TestHerald, id: string, deviceId: string, status: string, timeoutMs = 10_000
): Promise<any> {
  return waitUntil(`delivery of ${id} to ${deviceId} to become ${status}`, async () => {
    const d = await deliveryOf(h, id, deviceId)
    return d?.status === status ? d : undefined
  }, timeoutMs)
}

/** GET /v1/users/{user}/devices; asserts 200. */
export async function listDevices (h: TestHerald, user: string): Promise<any[]> {
  const res = await h.api(`/v1/users/${encodeURIComponent(user)}/devices`)
  assert.equal(res.status, 200, JSON.stringify(res.body))
  return res.body
}

/**
 * Waits until the server shows `deviceId` offline. Disconnects are recorded in batches, so a
 * message sent right after a device closed could still count it as online.
 */
export function waitOffline (h: TestHerald, user: string, deviceId: string, timeoutMs = 10_000): Promise<any> {
  return waitUntil(`${deviceId} to be shown offline`, async () => {
    const device = (await listDevices(h, user)).find(d => d.deviceId === deviceId)
    return device && device.online === false ? device : undefined
  }, timeoutMs)
}

/** A device of `user` over WebSocket, subscribed to its inbox (and `topics`), persistent unless `clean`. */
export async function device (
  h: TestHerald, user: string, clientId: string,
  { clean = false, topics = [] as string[], subscribe = true } = {}
): Promise<TestDevice> {
  const d = await connectDevice(h.wsUrl, { clientId, password: await h.token(user), clean })
  if (subscribe) {
    const granted = await d.client.subscribeAsync([`users/${user}/inbox`, ...topics], { qos: 1 })
    for (const g of granted) assert.equal(g.qos, 1, `subscription to ${g.topic} refused`)
  }
  return d
}

/** Connects a persistent device once (so its session exists), then disconnects and waits until it is shown offline. */
export async function offlineDevice (
  h: TestHerald, user: string, clientId: string, topics: string[] = []
): Promise<void> {
  const d = await device(h, user, clientId, { topics })
  await d.close()
  await waitOffline(h, user, clientId)
}

/** Reconnects a persistent session without subscribing again (the session keeps its subscriptions). */
export async function reconnect (h: TestHerald, user: string, clientId: string): Promise<TestDevice> {
  return device(h, user, clientId, { subscribe: false })
}

export const ids = (d: TestDevice): string[] => d.received.map(r => r.payload.id)

/** The device gets a push sent now, and is still connected. */
export async function stillServed (h: TestHerald, device: TestDevice, user: string): Promise<void> {
  const before = device.received.length
  const sent = await h.api('/v1/messages', { body: { to: { user }, title: 'still served' } })
  assert.equal(sent.status, 202, JSON.stringify(sent.body))
  const received = await device.waitFor(before + 1)
  assert.equal(received.at(-1)!.payload.id, sent.body.id)
  assert.ok(device.client.connected)
}
