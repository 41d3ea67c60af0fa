// Herald as several processes on one database (`--nodes N`): where the bench's devices and
// senders go, and what it reads of each process and of Postgres to say where the time goes.
//
// Devices are spread round robin (device i on process i mod N) and senders over every process
// (SendRequest.spread): a round of messages to every device goes through one process, the next
// round through the next, so each device gets 1/N of its messages through its own process and
// the rest through the others, and `data.n` says which.
import type pg from 'pg'
import { ACCEPT_LOCK } from '../../server/store/accept.js'
import type { SendRequest } from '../loadgen/protocol.js'
import { cpuMeter, cpuMs, sleep } from './proc.js'
import type { Recorder } from './report.js'
import type { Worker } from './loadgen.js'
import { METRICS_TOKEN, type System } from './systems.js'

/** The URLs device i connects to (urls[i mod N]) when Herald runs as several processes; else undefined. */
export function deviceUrls (sys: System): string[] | undefined {
  return sys.nodes.length > 1 ? sys.nodes.map(n => n.wsUrl) : undefined
}

/** Spreads a sender's requests over every Herald process, a round of `every` messages per process. */
export function spreadOver (sys: System, every: number): SendRequest['spread'] {
  return sys.nodes.length > 1 ? { urls: sys.nodes.map(n => n.httpUrl), every } : undefined
}

/** Counters read from one process' GET /metrics (cumulative). */
interface Scrape {
  /** accept transactions (group commits), the messages they carried, their seconds (lock wait included) */
  accepts: number
  acceptMessages: number
  acceptSeconds: number
  /** delivery-state writes (claims, PUBACKs, receipts) and their rows */
  stateWrites: number
  stateRows: number
}

const SERIES: Array<[RegExp, keyof Scrape]> = [
  [/^herald_db_batch_size_count\{[^}]*kind="accept"/, 'accepts'],
  [/^herald_db_batch_size_sum\{[^}]*kind="accept"/, 'acceptMessages'],
  [/^herald_db_batch_seconds_sum\{[^}]*kind="accept"/, 'acceptSeconds'],
  [/^herald_db_batch_size_count\{[^}]*kind="delivery_state"/, 'stateWrites'],
  [/^herald_db_batch_size_sum\{[^}]*kind="delivery_state"/, 'stateRows']
]

async function scrape (httpUrl: string): Promise<Scrape> {
  const res = await fetch(`${httpUrl}/metrics`, {
    headers: { authorization: `Bearer ${METRICS_TOKEN}` },
    signal: AbortSignal.timeout(5_000)
  })
  const text = await res.text()
  if (res.status !== 200) throw new Error(`GET /metrics: HTTP ${res.status}: ${text.slice(0, 200)}`)
  const out: Scrape = { accepts: 0, acceptMessages: 0, acceptSeconds: 0, stateWrites: 0, stateRows: 0 }
  for (const line of text.split('\n')) {
    for (const [re, key] of SERIES) if (re.test(line)) out[key] += Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return out
}

/** What each process and Postgres did over a measured interval. */
export interface ClusterReading {
  wallMs: number
  nodes: Array<Scrape & { cpuCore: number }>
  /** samples of pg_stat_activity / pg_locks over the interval */
  lock: {
    samples: number
    /** share of samples in which a transaction held the accept lock (exclusive) */
    heldShare: number
    /** backends waiting for the accept lock, mean per sample */
    waitingMean: number
    /** this database's non-idle client backends by what they were doing, mean per sample */
    states: Record<string, number>
  }
}

// Sampling pg_stat_activity costs Postgres a little CPU per sample: often enough for hundreds
// of samples in a phase, rarely enough to stay near 1% of a core.
const SAMPLE_EVERY_MS = 25

/**
 * Starts measuring: each Herald process' CPU (/proc) and /metrics counters, and a sampler of
 * the accept lock and of what this database's backends are doing. `read()` stops and returns
 * the differences.
 */
export async function clusterProbe (sys: System, pool: pg.Pool): Promise<{ read: () => Promise<ClusterReading> }> {
  const nodes = sys.nodes
  const before = await Promise.all(nodes.map(n => scrape(n.httpUrl)))
  const meter = cpuMeter(Object.fromEntries(nodes.map((n, k) => [`n${k}`, () => cpuMs(n.pid)])))
  let samples = 0
  let held = 0
  let waiting = 0
  const states: Record<string, number> = {}
  const running = { stop: false }
  const sampler = (async () => {
    while (!running.stop) {
      try {
        const { rows } = await pool.query<{ held: number, waiting: number, states: Record<string, number> | null }>(
          SAMPLE_SQL, [ACCEPT_LOCK])
        samples++
        held += rows[0].held > 0 ? 1 : 0
        waiting += rows[0].waiting
        for (const [k, v] of Object.entries(rows[0].states ?? {})) states[k] = (states[k] ?? 0) + v
      } catch {}
      await sleep(SAMPLE_EVERY_MS)
    }
  })()
  return {
    read: async () => {
      const cpu = meter.read()
      running.stop = true
      await sampler
      const after = await Promise.all(nodes.map(n => scrape(n.httpUrl)))
      const diff = (k: number): Scrape & { cpuCore: number } => {
        const d = { cpuCore: cpu.sets[`n${k}`].core } as Scrape & { cpuCore: number }
        for (const key of Object.keys(before[k]) as Array<keyof Scrape>) d[key] = after[k][key] - before[k][key]
        return d
      }
      const n = Math.max(1, samples)
      return {
        wallMs: cpu.wallMs,
        nodes: nodes.map((_, k) => diff(k)),
        lock: {
          samples,
          heldShare: held / n,
          waitingMean: waiting / n,
          states: Object.fromEntries(Object.entries(states).map(([k, v]) => [k, v / n]))
        }
      }
    }
  }
}

// The accept lock is pg_advisory_xact_lock(ACCEPT_LOCK) (server/store/accept.ts): a bigint key
// below 2^32 shows in pg_locks as classid 0, objid = the key, objsubid 1; connects take it
// shared to read a first page, so only exclusive holders count as accepts. A backend's state is
// its wait event, "CPU" when active without one, or "idle in transaction" (waiting for Herald
// to send the next statement: its event loop, or a round trip).
const SAMPLE_SQL = `
  with db as (select oid from pg_database where datname = current_database()),
  accept_lock as (
    select l.granted, l.mode from pg_locks l, db
     where l.locktype = 'advisory' and l.database = db.oid
       and l.classid = 0 and l.objid::bigint = $1::bigint and l.objsubid = 1
  ),
  activity as (
    select case
             when a.state = 'active' and a.wait_event is null then 'CPU'
             when a.state = 'active' then a.wait_event_type || ': ' || a.wait_event
             else a.state
           end as what
      from pg_stat_activity a
     where a.datname = current_database() and a.backend_type = 'client backend'
       and a.pid <> pg_backend_pid() and a.state not in ('idle')
  )
  select (select count(*) from accept_lock where granted and mode = 'ExclusiveLock')::int as held,
         (select count(*) from accept_lock where not granted)::int as waiting,
         (select json_object_agg(what, n)
            from (select what, count(*)::int as n from activity group by what) s) as states`

/** The states that took most of the backends' time, for a note: "CPU 0.62, idle in transaction 0.40, …". */
export function topStates (states: Record<string, number>, count = 6): string {
  return Object.entries(states)
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([k, v]) => `${k} ${v.toFixed(2)}`)
    .join(', ')
}

/**
 * Herald-only rows for a phase measured with `clusterProbe`: each process' CPU, the accept
 * transactions and the accept lock; what the database's backends were doing goes in a note.
 * `prefix` keeps the single-request and batch phases' rows apart.
 */
export function recordCluster (
  rec: Recorder, prefix: string, phase: string, r: ClusterReading, messages: number, run: number
): void {
  const row = (key: string, label: string, unit: string, decimals?: number): string => {
    const k = `${prefix}${key}`
    if (!rec.metrics.has(k)) {
      rec.metric(k, `${phase}: ${label}`, unit, 'info', decimals)
      for (const base of ['aedes', 'mosquitto'] as const) rec.na(k, base, 'Herald only')
    }
    return k
  }
  const seconds = r.wallMs / 1000
  r.nodes.forEach((n, i) => {
    rec.add(row(`nodeCpu${i}`, `Herald process ${i + 1} CPU`, '% of a core', 0), 'herald', n.cpuCore * 100)
  })
  const accepts = r.nodes.reduce((a, n) => a + n.accepts, 0)
  const acceptMessages = r.nodes.reduce((a, n) => a + n.acceptMessages, 0)
  const acceptSeconds = r.nodes.reduce((a, n) => a + n.acceptSeconds, 0)
  rec.add(row('accepts', 'accept transactions per second, all processes', 'tx/s', 0), 'herald', accepts / seconds)
  rec.add(row('acceptSize', 'messages per accept transaction', 'msgs', 1), 'herald', acceptMessages / accepts)
  rec.add(row('acceptMs', 'accept transaction, mean (waiting for the lock included)', 'ms', 2), 'herald',
    acceptSeconds * 1000 / accepts)
  rec.add(row('lockHeld', 'accept lock held (samples of pg_locks)', '% of the time', 0), 'herald',
    r.lock.heldShare * 100)
  rec.add(row('lockWaiting', 'backends waiting for the accept lock, mean', 'backends', 2), 'herald',
    r.lock.waitingMean)
  // the lock serialises every accept of the cluster: messages ÷ the time it was held is the rate
  // the accepts would reach with it held all the time, at the same time held per message
  const heldSeconds = r.lock.heldShare * seconds
  rec.add(row('lockHeldTx', 'accept lock held per transaction', 'ms', 1), 'herald', heldSeconds * 1000 / accepts)
  rec.add(row('lockCeiling', 'messages ÷ time the accept lock was held (its ceiling)', 'msg/s', 0), 'herald',
    acceptMessages / heldSeconds)
  const stateRows = r.nodes.reduce((a, n) => a + n.stateRows, 0)
  rec.add(row('stateRows', 'delivery-state rows written per message (claims, PUBACKs)', 'rows', 2), 'herald',
    stateRows / messages)
  rec.notes.push(`herald run ${run + 1}, ${phase}: this database's busy backends, mean per sample ` +
    `(${r.lock.samples} samples of pg_stat_activity): ${topStates(r.lock.states) || 'none'}; ` +
    `accept transactions per process: ${r.nodes.map(n => n.accepts).join(' / ')}, ` +
    `messages per transaction ${r.nodes.map(n => (n.acceptMessages / Math.max(1, n.accepts)).toFixed(1)).join(' / ')}.`)
}

/**
 * Waits for `worker`'s receipts like `worker.waitDone`; when they do not all arrive, the error
 * says what Herald recorded for the devices (deliveries by status, where each device is
 * connected, the seqs still undelivered) and what its processes logged, so a lost or stuck
 * delivery leaves evidence before the bench drops the database.
 */
export async function waitDelivered (
  worker: Pick<Worker, 'waitDone' | 'collect'>, sys: System, deviceIds: string[], timeoutMs: number
): Promise<{ at: number, unique: number }> {
  try {
    return await worker.waitDone(timeoutMs)
  } catch (err) {
    if (sys.kind !== 'herald' || !sys.db) throw err
    const got = await worker.collect().then(c => c.unique, () => NaN)
    let evidence: string
    try {
      evidence = await deliveryEvidence(sys.db.pool, deviceIds, sys.nodes.map(n => n.pid))
    } catch (e) {
      evidence = `(reading the database failed: ${(e as Error).message})`
    }
    // Herald logs JSON at LOG_LEVEL=warn; the rest of its output is the welcome banner
    const logs = sys.nodes.map((n, k) => `process ${k + 1} (pid ${n.pid}) logged: ` +
      (n.proc.output().split('\n').filter(l => l.startsWith('{')).slice(-5).join(' / ') || 'no warnings'))
      .join('; ')
    throw new Error(`${(err as Error).message}: the devices had ${got} unique messages; ${evidence}; ${logs}`)
  }
}

async function deliveryEvidence (pool: pg.Pool, deviceIds: string[], pids: number[]): Promise<string> {
  const status = await pool.query<{ status: string, n: number }>(
    'select status, count(*)::int as n from deliveries where device_id = any($1) group by status order by status',
    [deviceIds])
  const devices = await pool.query<{ device_id: string, connected_node: string | null }>(
    'select device_id, connected_node from devices where device_id = any($1) order by device_id limit 10', [deviceIds])
  const nodes = await pool.query<{ id: string, gone: boolean, pid: number }>(
    'select id, gone_at is not null as gone, pid from nodes order by id')
  // the bench's process index k is data.n of each message (the process it was sent through) and
  // nodes.pid of process k: which process accepted each undelivered row, which one holds its
  // device, and through which process the device's next row (by seq) came
  const processOf = new Map(nodes.rows.map(n => [n.id, pids.indexOf(n.pid) + 1]))
  type Gap = { via: string, holder: string | null, next_via: string | null, next_status: string | null, n: number }
  const gaps = await pool.query<Gap>(
    `select via, holder, next_via, next_status, count(*)::int as n from (
       select d.status, m.data->>'n' as via, dev.connected_node as holder,
              lead(m.data->>'n') over w as next_via, lead(d.status) over w as next_status
         from deliveries d join messages m on m.id = d.message_id join devices dev on dev.device_id = d.device_id
        where d.device_id = any($1)
       window w as (partition by d.device_id order by d.seq)) x
      where status in ('queued', 'sent')
      group by 1, 2, 3, 4 order by n desc limit 8`, [deviceIds])
  const stuck = await pool.query<{ device_id: string, n: number, first: string, last: string, statuses: string }>(
    `select device_id, count(*)::int as n, min(seq)::text as first, max(seq)::text as last,
            string_agg(distinct status, ',') as statuses
       from deliveries where device_id = any($1) and status in ('queued', 'sent')
      group by device_id order by device_id limit 10`, [deviceIds])
  const short = (id: string | null): string => id === null ? 'none' : id.slice(0, 13)
  return `deliveries by status: ${status.rows.map(r => `${r.status} ${r.n}`).join(', ') || 'none'}; ` +
    `connected to: ${devices.rows.map(d => `${d.device_id}→${short(d.connected_node)}`).join(', ')}; ` +
    `nodes: ${nodes.rows.map(n => `${short(n.id)}${n.gone ? ' (gone)' : ''}`).join(', ')}; ` +
    `not delivered: ${stuck.rows.map(s => `${s.device_id} ${s.n} (seq ${s.first}–${s.last}, ${s.statuses})`)
      .join(', ') || 'none'}; ` +
    'undelivered rows by (accepted through process, device held by process, next row through process and its ' +
    `status): ${gaps.rows.map(g => `(${Number(g.via) + 1}, ${g.holder === null ? 'none' : processOf.get(g.holder)}, ` +
      `${g.next_via === null ? '–' : Number(g.next_via) + 1} ${g.next_status ?? ''}) ${g.n}`).join(', ') || 'none'}`
}
