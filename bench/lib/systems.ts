// The three systems under test, each started fresh as its own process and stopped again:
// Herald (the real server, compiled or through tsx, on a real Postgres), a bare aedes with its
// in-memory store over ws 8 (bench/baselines/aedes.ts), and Mosquitto over WebSocket.
import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import mqtt from 'mqtt'
import pg from 'pg'
import { DEFAULT_MAX_INFLIGHT_PER_DEVICE } from '../../server/config.js'
import { childEnv, freePort, now, ROOT, sleep, spawnTracked, type Child } from './proc.js'

export const API_KEY = 'hk_bench_api_key_that_is_long_enough_0123456789'
export const JWT_SECRET = 'bench-jwt-secret-that-is-long-enough-0123456789'
export const ADMIN_PASSWORD = 'bench-admin-password'
/** GET /metrics answers `Authorization: Bearer <METRICS_TOKEN>` */
export const METRICS_TOKEN = 'bench-metrics-token-0123456789'

export type SystemKind = 'herald' | 'aedes' | 'mosquitto'
export const SYSTEM_LABEL: Record<SystemKind, string> = {
  herald: 'Herald (durable)',
  aedes: 'bare aedes/ws8',
  mosquitto: 'Mosquitto/WS'
}

/** Everything a system needs from the bench run. */
export interface BenchEnv {
  tmpDir: string
  /** the Postgres server Herald's databases are created on (a URL to its `postgres` database or any database) */
  pgServerUrl: string
  /** the postmaster's pid when that Postgres runs on this machine, to read its CPU */
  postmasterPid?: number
  /** how Herald is started: node arguments before any profiling flags */
  heraldArgs: string[]
  heraldMode: 'compiled' | 'tsx'
  mosquittoPath?: string
  /** write Herald CPU profiles here (`--profile`) */
  profileDir?: string
}

export interface System {
  kind: SystemKind
  wsUrl: string
  /** the server process (Herald's node, aedes' node, mosquitto); with several Herald processes, the first */
  pid: number
  proc: Child
  /** spawn → ready (Herald: /readyz 200; baselines: first CONNACK over WebSocket), ms */
  readyMs: number
  /** Herald only */
  httpUrl?: string
  db?: BenchDatabase
  /** Herald's processes on the one database (`--nodes`); one for a single process, the baselines have none */
  nodes: HeraldNode[]
  stop: () => Promise<void>
}

/** One Herald process of a system. */
export interface HeraldNode {
  httpUrl: string
  wsUrl: string
  pid: number
  proc: Child
}

export interface BenchDatabase {
  name: string
  url: string
  pool: pg.Pool
  drop: () => Promise<void>
}

function withDatabase (url: string, name: string): string {
  const u = new URL(url)
  u.pathname = `/${name}`
  return u.toString()
}

/** A fresh database on the bench's Postgres; `drop()` removes it. */
export async function createDatabase (env: BenchEnv, label: string): Promise<BenchDatabase> {
  const name = `herald_bench_${label.replace(/\W/g, '_').slice(0, 20)}_${randomBytes(4).toString('hex')}`
  const admin = new pg.Client({ connectionString: env.pgServerUrl })
  await admin.connect()
  try { await admin.query(`create database ${name}`) } finally { await admin.end() }
  const url = withDatabase(env.pgServerUrl, name)
  const pool = new pg.Pool({ connectionString: url, max: 3 })
  pool.on('error', () => {})
  let dropped = false
  return {
    name,
    url,
    pool,
    drop: async () => {
      if (dropped) return
      dropped = true
      await pool.end().catch(() => {})
      const c = new pg.Client({ connectionString: env.pgServerUrl })
      await c.connect()
      try { await c.query(`drop database if exists ${name} with (force)`) } finally { await c.end() }
    }
  }
}

// Herald reads these; none may leak in from the caller's environment.
const HERALD_VARS = ['PORT', 'HOST', 'DATABASE_URL', 'DATA_DIR', 'JWT_SECRET', 'JWT_PUBLIC_KEY', 'JWT_PRIVATE_KEY',
  'API_KEY', 'ADMIN_PASSWORD', 'MQTT_PORT', 'LOG_LEVEL', 'SHUTDOWN_TIMEOUT_MS', 'MAX_INFLIGHT_PER_DEVICE',
  'TEST_DATABASE_URL', 'NODE_TEST_CONTEXT', 'NODE_OPTIONS', 'METRICS_PORT', 'METRICS_TOKEN']

/**
 * Starts Herald on `db` (a fresh one unless given; then it is not dropped on stop) and waits
 * for /readyz 200. `profileName` turns on `--cpu-prof` when the bench profiles. `nodes` > 1
 * starts that many processes on the one database, as a cluster (README "Running several
 * processes"): the first alone (it migrates), then the others together; `readyMs` is the first's.
 */
export async function startHerald (
  env: BenchEnv,
  opts: { label: string, db?: BenchDatabase, profileName?: string, readyTimeoutMs?: number, nodes?: number }
): Promise<System> {
  const ownDb = opts.db === undefined
  const db = opts.db ?? await createDatabase(env, opts.label)
  const nodes: Array<HeraldNode & { readyMs: number }> = []
  try {
    const count = Math.max(1, opts.nodes ?? 1)
    const start = (k: number): Promise<HeraldNode & { readyMs: number }> => startHeraldNode(env, db, {
      label: count === 1 ? opts.label : `${opts.label}-n${k + 1}`,
      profileName: opts.profileName && count > 1 ? `${opts.profileName}-n${k + 1}` : opts.profileName,
      readyTimeoutMs: opts.readyTimeoutMs ?? 60_000
    })
    nodes.push(await start(0))
    const rest = await Promise.allSettled(Array.from({ length: count - 1 }, (_, k) => start(k + 1)))
    for (const r of rest) if (r.status === 'fulfilled') nodes.push(r.value)
    const failed = rest.find(r => r.status === 'rejected')
    if (failed) throw (failed as PromiseRejectedResult).reason
    const first = nodes[0]
    return {
      kind: 'herald',
      wsUrl: first.wsUrl,
      httpUrl: first.httpUrl,
      pid: first.pid,
      proc: first.proc,
      readyMs: first.readyMs,
      db,
      nodes,
      stop: async () => {
        await Promise.all(nodes.map(n => n.proc.stop(25_000)))
        if (ownDb) await db.drop().catch(() => {})
      }
    }
  } catch (err) {
    await Promise.all(nodes.map(n => n.proc.stop(5_000)))
    if (ownDb) await db.drop().catch(() => {})
    throw err
  }
}

async function startHeraldNode (
  env: BenchEnv, db: BenchDatabase, opts: { label: string, profileName?: string, readyTimeoutMs: number }
): Promise<HeraldNode & { readyMs: number }> {
  const port = await freePort()
  const childEnv: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !HERALD_VARS.includes(k)) childEnv[k] = v
  Object.assign(childEnv, {
    PORT: String(port),
    HOST: '127.0.0.1',
    DATABASE_URL: db.url,
    DATA_DIR: path.join(env.tmpDir, 'herald-data'),
    JWT_SECRET,
    API_KEY,
    ADMIN_PASSWORD,
    METRICS_TOKEN,
    LOG_LEVEL: 'warn',
    SHUTDOWN_TIMEOUT_MS: '15000'
  })
  const profile = env.profileDir && opts.profileName
    ? ['--cpu-prof', `--cpu-prof-dir=${env.profileDir}`, `--cpu-prof-name=${opts.profileName}.cpuprofile`]
    : []
  if (profile.length > 0) await mkdir(env.profileDir!, { recursive: true })
  const [first, ...rest] = env.heraldArgs
  const t0 = performance.now()
  const proc = spawnTracked(`herald-${opts.label}`, process.execPath, [...profile, first, ...rest], { env: childEnv })
  const httpUrl = `http://127.0.0.1:${port}`
  const readyMs = await waitReadyz(httpUrl, proc, t0, opts.readyTimeoutMs)
  return { httpUrl, wsUrl: `ws://127.0.0.1:${port}/mqtt`, pid: proc.pid, proc, readyMs }
}

/** Polls GET /readyz every 10 ms; resolves with ms since `t0` once it answers 200. */
export async function waitReadyz (httpUrl: string, proc: Child, t0: number, timeoutMs: number): Promise<number> {
  let exited = false
  void proc.exited.then(() => { exited = true })
  while (performance.now() - t0 < timeoutMs) {
    if (exited) throw new Error(`${proc.name} exited before it was ready:\n${proc.output().slice(-3000)}`)
    try {
      const res = await fetch(`${httpUrl}/readyz`, { signal: AbortSignal.timeout(2_000) })
      await res.arrayBuffer()
      if (res.status === 200) return performance.now() - t0
    } catch {}
    await sleep(10)
  }
  await proc.kill9()
  throw new Error(`${proc.name} not ready after ${timeoutMs} ms:\n${proc.output().slice(-3000)}`)
}

/** Tries an MQTT CONNECT over WebSocket every 10 ms; resolves with ms since `t0` at the first CONNACK. */
export async function waitMqtt (wsUrl: string, proc: Child, t0: number, timeoutMs: number): Promise<number> {
  let exited = false
  void proc.exited.then(() => { exited = true })
  while (performance.now() - t0 < timeoutMs) {
    if (exited) throw new Error(`${proc.name} exited before it was ready:\n${proc.output().slice(-3000)}`)
    const ok = await new Promise<boolean>(resolve => {
      const c = mqtt.connect(wsUrl, {
        clientId: `bench-probe-${Math.random().toString(36).slice(2, 8)}`,
        username: 'probe',
        password: 'x',
        protocolVersion: 4,
        reconnectPeriod: 0,
        connectTimeout: 2_000
      })
      const done = (v: boolean): void => { c.end(true); resolve(v) }
      c.once('connect', () => done(true))
      c.once('error', () => done(false))
      c.once('close', () => done(false))
    })
    if (ok) return performance.now() - t0
    await sleep(10)
  }
  await proc.kill9()
  throw new Error(
    `${proc.name} did not answer MQTT over WebSocket within ${timeoutMs} ms:\n${proc.output().slice(-3000)}`)
}

export async function startAedes (label: string): Promise<System> {
  const port = await freePort()
  const t0 = performance.now()
  const args = ['--import', 'tsx', 'bench/baselines/aedes.ts', String(port)]
  const proc = spawnTracked(`aedes-${label}`, process.execPath, args, { env: childEnv() })
  const wsUrl = `ws://127.0.0.1:${port}/mqtt`
  const readyMs = await waitMqtt(wsUrl, proc, t0, 30_000)
  return { kind: 'aedes', wsUrl, pid: proc.pid, proc, readyMs, nodes: [], stop: () => proc.stop(5_000) }
}

/**
 * Mosquitto's config: a WebSocket listener on loopback (`lo`: with the libwebsockets of
 * Debian's 2.0.11 an IP address is ignored and the port opens on every interface), plus a plain
 * MQTT listener that nobody uses, because 2.0.11 refuses to start with a WebSocket listener
 * alone (eclipse-mosquitto/mosquitto#2284). In memory, queues never full, and as many QoS 1
 * messages in flight per client as Herald allows by default, so both drain a backlog with the same window.
 */
export function mosquittoConfig (wsPort: number, tcpPort: number): string {
  return [
    'per_listener_settings false',
    'allow_anonymous true',
    'persistence false',
    'max_queued_messages 1000000',
    'max_queued_bytes 0',
    `max_inflight_messages ${DEFAULT_MAX_INFLIGHT_PER_DEVICE}`,
    'max_connections -1',
    'set_tcp_nodelay true',
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    `listener ${tcpPort} 127.0.0.1`,
    'protocol mqtt',
    `listener ${wsPort} lo`,
    'protocol websockets',
    ''
  ].join('\n')
}

export async function startMosquitto (env: BenchEnv, label: string): Promise<System> {
  if (!env.mosquittoPath) throw new Error('mosquitto is not installed')
  const [wsPort, tcpPort] = [await freePort(), await freePort()]
  const dir = path.join(env.tmpDir, `mosquitto-${label}-${wsPort}`)
  await mkdir(dir, { recursive: true })
  const conf = path.join(dir, 'mosquitto.conf')
  await writeFile(conf, mosquittoConfig(wsPort, tcpPort))
  const t0 = performance.now()
  const proc = spawnTracked(`mosquitto-${label}`, env.mosquittoPath, ['-c', conf])
  const wsUrl = `ws://127.0.0.1:${wsPort}/mqtt`
  const readyMs = await waitMqtt(wsUrl, proc, t0, 15_000)
  return { kind: 'mosquitto', wsUrl, pid: proc.pid, proc, readyMs, nodes: [], stop: () => proc.stop(5_000) }
}

/** `nodes`: Herald processes on one database (the baselines are always one process) */
export async function startSystem (
  env: BenchEnv, kind: SystemKind, label: string, profileName?: string, nodes = 1
): Promise<System> {
  switch (kind) {
    case 'herald': return await startHerald(env, { label, profileName, nodes })
    case 'aedes': return await startAedes(label)
    case 'mosquitto': return await startMosquitto(env, label)
  }
}

/**
 * Measured here: a lone mqtt.js CONNECT + SUBSCRIBE over WebSocket takes ~200 ms with Mosquitto,
 * ~4 ms with aedes.
 */
export const MOSQUITTO_WS_NOTE = 'Mosquitto 2.0.11 (Debian) serves WebSockets through a libwebsockets built ' +
  'without external-poll support: a new connection\'s handshake and first packets wait for Mosquitto\'s main ' +
  'loop to wake (a lone CONNECT + SUBSCRIBE took ~200 ms here, ~4 ms with aedes), so its connect rate and its ' +
  'reconnect → drain time carry that wait; steady traffic on open connections does not ' +
  '(eclipse-mosquitto/mosquitto#2578).'

export function findMosquitto (): string | undefined {
  const candidates = [
    '/usr/sbin/mosquitto', '/usr/local/sbin/mosquitto', '/usr/bin/mosquitto', '/usr/local/bin/mosquitto',
    '/opt/homebrew/sbin/mosquitto'
  ]
  for (const p of candidates) {
    if (existsSync(p)) return p
  }
  return undefined
}

/** The postmaster of a local Postgres, found through one of its backends' parent. */
export async function findPostmaster (serverUrl: string): Promise<number | undefined> {
  const host = new URL(serverUrl).hostname
  if (!['127.0.0.1', 'localhost', '::1', '[::1]', ''].includes(host)) return undefined
  const c = new pg.Client({ connectionString: serverUrl })
  try {
    await c.connect()
    const { rows } = await c.query<{ pid: number }>('select pg_backend_pid() as pid')
    const stat = readFileSync(`/proc/${rows[0].pid}/stat`, 'utf8')
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
  } catch {
    return undefined
  } finally {
    await c.end().catch(() => {})
  }
}

export { now, ROOT }
