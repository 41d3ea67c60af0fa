import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { parseConfig } from '../../server/config.js'
import { createLogger } from '../../server/log.js'
import { startHerald, type Herald, type HeraldDeps } from '../../server/app.js'
import { createTestDatabase, type TestDatabase } from './db.js'

export const ADMIN_PASSWORD = 'test-admin-password'
export const JWT_SECRET = 'test-jwt-secret-that-is-long-enough-0123456789'
export const API_KEY = 'hk_test_api_key_that_is_long_enough_0123456789'

export interface TestHerald {
  herald: Herald
  db: TestDatabase
  url: string
  wsUrl: string
  /** fetch against the server with the API key */
  api: ApiCall
  /** a device token for `user`, signed by the server */
  token: (user: string, ttl?: number) => Promise<string>
  stop: () => Promise<void>
}

/**
 * A real Herald on a fresh database, on port 0, with a known API key and admin password.
 * `env` overrides configuration. Pass `db` to restart on the same database.
 */
export async function startTestHerald (
  { env = {}, db, deps = {} }: { env?: Record<string, string>, db?: TestDatabase, deps?: Omit<HeraldDeps, 'log'> } = {}
): Promise<TestHerald> {
  const database = db ?? await createTestDatabase()
  const config = parseConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    DATABASE_URL: database.url,
    JWT_SECRET,
    API_KEY,
    ADMIN_PASSWORD,
    // four files at once, some with several servers each, share one Postgres' 100 connections
    DATABASE_POOL_SIZE: '5',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    ...env
  })
  // a cheap admin password hash: tests check it hundreds of times (the limiter's tests keep the real one)
  const herald = await startHerald(config, { log: createLogger(config.logLevel), passwordHashCost: 1024, ...deps })
  const url = herald.url
  const { api, token } = apiClient(() => url)
  return {
    herald,
    db: database,
    url,
    wsUrl: url.replace(/^http/, 'ws') + '/mqtt',
    api,
    token,
    stop: async () => {
      await herald.stop()
      if (!db) await database.drop()
    }
  }
}

export interface ApiRequest { method?: string, body?: unknown, headers?: Record<string, string>, apiKey?: string }
export type ApiCall = (path: string, init?: ApiRequest) => Promise<{ status: number, body: any, headers: Headers }>

/** fetch with an API key (API_KEY unless given), JSON in and out; `token` gets a device token. */
export function apiClient (
  baseUrl: () => string
): { api: ApiCall, token: (user: string, ttl?: number) => Promise<string> } {
  const api: ApiCall = async (path, init = {}) => {
    const res = await fetch(baseUrl() + path, {
      method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
      headers: {
        authorization: `Bearer ${init.apiKey ?? API_KEY}`,
        ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...init.headers
      },
      body: init.body === undefined ? undefined : typeof init.body === 'string' ? init.body : JSON.stringify(init.body)
    })
    const text = await res.text()
    let body: unknown = text
    try { body = JSON.parse(text) } catch {}
    return { status: res.status, body, headers: res.headers }
  }
  const token = async (user: string, ttl?: number): Promise<string> => {
    const res = await api('/v1/tokens', { body: { user, ttl } })
    if (res.status !== 201) throw new Error(`token request failed: ${res.status} ${JSON.stringify(res.body)}`)
    return res.body.token
  }
  return { api, token }
}

export interface Received { topic: string, payload: any, raw: Buffer }

/** A real mqtt.js device over WebSocket; collects every message it receives. */
export interface TestDevice {
  client: MqttClient
  received: Received[]
  /** resolves once `count` messages in all have arrived */
  waitFor: (count: number, timeoutMs?: number) => Promise<Received[]>
  close: () => Promise<void>
}

export async function connectDevice (
  wsUrl: string, opts: IClientOptions & { clientId: string, password: string }
): Promise<TestDevice> {
  const client = mqtt.connect(wsUrl, {
    protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5_000, clean: false, username: 'device', ...opts
  })
  const received: Received[] = []
  const waiters: Array<() => void> = []
  client.on('message', (topic, raw) => {
    let payload: unknown = raw.toString()
    try { payload = JSON.parse(raw.toString()) } catch {}
    received.push({ topic, payload, raw })
    for (const w of waiters.splice(0)) w()
  })
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve())
    client.once('error', reject)
    client.once('close', () => reject(new Error('connection closed before CONNACK')))
  })
  const waitFor = (count: number, timeoutMs = 10_000): Promise<Received[]> => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`expected ${count} messages, got ${received.length}`)), timeoutMs)
    const check = (): void => {
      if (received.length >= count) {
        clearTimeout(timer)
        resolve(received.slice())
      } else waiters.push(check)
    }
    check()
  })
  const close = (): Promise<void> => new Promise<void>(resolve => {
    // a connection the server already closed has nothing to flush: end it without waiting for a DISCONNECT round trip
    if (!client.connected) {
      client.end(true)
      return resolve()
    }
    client.end(false, {}, () => resolve())
  })
  return { client, received, waitFor, close }
}
