// Helpers for the device SDK's tests (sdk/js): tokens signed as an app's backend would, a storage
// whose writes a test can hold, and waiting for the client's events.
import assert from 'node:assert/strict'
import jwt from 'jsonwebtoken'
import type { HeraldClient, HeraldEvents, HeraldStorage } from '../../sdk/js/src/index.js'
import { JWT_SECRET, type ApiCall } from './herald.js'
import { waitUntil } from './delivery.js'

/** A device token for `user`, signed the way an app's backend signs one (HS256, `sub` and `exp`). */
export function signToken (user: string, ttlSeconds = 3600, secret = JWT_SECRET): string {
  return jwt.sign({ sub: user, exp: Math.floor(Date.now() / 1000) + ttlSeconds }, secret, { algorithm: 'HS256' })
}

/** A token provider that counts its calls and remembers what it handed out. */
export function tokenProvider (make: () => string): { provide: () => Promise<string>, issued: string[] } {
  const issued: string[] = []
  return {
    issued,
    provide: async () => {
      const token = make()
      issued.push(token)
      return token
    }
  }
}

/**
 * A storage in memory whose writes a test can hold: the value is stored at once (the app would
 * find it after a restart), but the promise stays pending until `release()`, as a slow disk or an
 * app killed mid-write leaves it. The client acknowledges a message only once its id is written,
 * so holding `herald:seen:` writes holds the PUBACK.
 */
export function holdableStorage (): {
  storage: HeraldStorage
  items: Map<string, string>
  hold: (keyPrefix: string) => void
  release: () => void
} {
  const items = new Map<string, string>()
  let held: string | undefined
  const waiting: Array<() => void> = []
  return {
    items,
    storage: {
      getItem: key => items.get(key) ?? null,
      setItem: (key, value) => {
        items.set(key, value)
        if (held !== undefined && key.startsWith(held)) return new Promise<void>(resolve => waiting.push(resolve))
      },
      removeItem: key => { items.delete(key) }
    },
    hold: prefix => { held = prefix },
    release: () => {
      held = undefined
      for (const resolve of waiting.splice(0)) resolve()
    }
  }
}

/** Resolves with the arguments of the next `event` that passes `accept`. */
export function nextEvent<K extends keyof HeraldEvents> (
  client: HeraldClient, event: K, accept: (...args: Parameters<HeraldEvents[K]>) => boolean = () => true,
  timeoutMs = 10_000
): Promise<Parameters<HeraldEvents[K]>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off()
      reject(new Error(`no "${String(event)}" event within ${timeoutMs} ms (state ${client.state})`))
    }, timeoutMs)
    const listener = ((...args: Parameters<HeraldEvents[K]>) => {
      if (!accept(...args)) return
      clearTimeout(timer)
      off()
      resolve(args)
    }) as HeraldEvents[K]
    const off = client.on(event, listener)
  })
}

/** Every value `event` brings from now on, in order, and a wait for the first `count` of them. */
export function record<K extends keyof HeraldEvents> (
  client: HeraldClient, event: K
): { list: Array<Parameters<HeraldEvents[K]>[0]>, waitFor: (count: number, timeoutMs?: number) => Promise<void> } {
  const list: Array<Parameters<HeraldEvents[K]>[0]> = []
  const waiters = new Set<() => void>()
  client.on(event, ((first: Parameters<HeraldEvents[K]>[0]) => {
    list.push(first)
    for (const waiter of [...waiters]) waiter()
  }) as HeraldEvents[K])
  const waitFor = (count: number, timeoutMs = 10_000): Promise<void> => new Promise((resolve, reject) => {
    const check = (): void => {
      if (list.length < count) return
      waiters.delete(check)
      clearTimeout(timer)
      resolve()
    }
    const timer = setTimeout(() => {
      waiters.delete(check)
      reject(new Error(`expected ${count} "${String(event)}" events, got ${list.length} (state ${client.state})`))
    }, timeoutMs)
    waiters.add(check)
    check()
  })
  return { list, waitFor }
}

/** POST /v1/messages; asserts 202. */
export async function sendPush (
  api: ApiCall, body: Record<string, unknown>
): Promise<{ id: string, recipients: number }> {
  const res = await api('/v1/messages', { body })
  assert.equal(res.status, 202, `send failed: ${res.status} ${JSON.stringify(res.body)}`)
  return res.body
}

/** The delivery of message `id` to `deviceId`, as GET /v1/messages/{id} shows it. */
export async function deliveryTo (api: ApiCall, id: string, deviceId: string): Promise<any> {
  const res = await api(`/v1/messages/${id}`)
  assert.equal(res.status, 200, JSON.stringify(res.body))
  return res.body.deliveries.find((d: { deviceId: string }) => d.deviceId === deviceId)
}

/** Polls GET /v1/messages/{id} until the delivery to `deviceId` passes `check`; returns it. */
export function waitForDelivery (
  api: ApiCall, id: string, deviceId: string, check: (delivery: any) => boolean, what: string, timeoutMs = 10_000
): Promise<any> {
  return waitUntil(`delivery of ${id} to ${deviceId}: ${what}`, async () => {
    const d = await deliveryTo(api, id, deviceId)
    return d !== undefined && check(d) ? d : undefined
  }, timeoutMs)
}
