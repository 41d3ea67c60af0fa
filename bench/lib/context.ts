import type { BenchEnv, System, SystemKind } from './systems.js'
import { startSystem } from './systems.js'
import type { Recorder } from './report.js'
import { cpuMs, treeCpuMs, sleep } from './proc.js'
import type pg from 'pg'

/** Sizes of each scenario: full mode follows the issue, quick mode is a smoke run. */
export interface Sizes {
  throughputMessages: number
  /** devices the throughput messages go to, round robin (1: the 1→1) */
  throughputDevices: number
  /** a throughput sender stops after this long, whatever it got through */
  sendMaxSeconds: number
  httpConcurrency: number
  /** messages per `POST /v1/messages/batch`, and such requests in flight */
  batchSize: number
  batchConcurrency: number
  mqttWindow: number
  latencyRate: number
  latencySeconds: number
  latencyWarmupSeconds: number
  latencyDevices: number
  /** a light load too, below Herald's saturation: msg/s and seconds */
  latencyLightRate: number
  latencyLightSeconds: number
  fanoutUsers: number
  fanoutTopicDevices: number
  backlog: number[]
  connectionLevels: number[]
  idleSeconds: number
  restartDeliveries: number
  /** webhooks: messages sent without and again with a webhook endpoint, to this many online devices */
  webhookMessages: number
  webhookDevices: number
}

export const FULL: Sizes = {
  throughputMessages: 50_000,
  throughputDevices: 1,
  sendMaxSeconds: 40,
  httpConcurrency: 100,
  batchSize: 100,
  batchConcurrency: 8,
  mqttWindow: 100,
  latencyRate: 2_000,
  latencySeconds: 10,
  latencyWarmupSeconds: 1,
  latencyDevices: 100,
  latencyLightRate: 200,
  latencyLightSeconds: 5,
  fanoutUsers: 1_000,
  fanoutTopicDevices: 10_000,
  backlog: [10_000, 100_000],
  connectionLevels: [5_000, 10_000, 19_000],
  idleSeconds: 10,
  restartDeliveries: 1_000_000,
  webhookMessages: 30_000,
  webhookDevices: 10
}

export const QUICK: Sizes = {
  throughputMessages: 2_000,
  throughputDevices: 1,
  sendMaxSeconds: 10,
  httpConcurrency: 100,
  batchSize: 100,
  batchConcurrency: 8,
  mqttWindow: 100,
  latencyRate: 2_000,
  latencySeconds: 1.5,
  latencyWarmupSeconds: 0.5,
  latencyDevices: 20,
  latencyLightRate: 200,
  latencyLightSeconds: 1,
  fanoutUsers: 100,
  fanoutTopicDevices: 500,
  backlog: [1_000],
  connectionLevels: [1_000],
  idleSeconds: 3,
  restartDeliveries: 100_000,
  webhookMessages: 2_000,
  webhookDevices: 10
}

export interface Ctx {
  env: BenchEnv
  quick: boolean
  runs: number
  sizes: Sizes
  /** systems that can run here (Mosquitto only when installed) */
  systems: SystemKind[]
  /** body padding for ~200-byte device payloads */
  pad: number
  profile: boolean
  /** Herald processes on the one database (`--nodes`); devices and senders are spread over them */
  nodes: number
  /**
   * measure each Herald process, the accept transactions and the accept lock (bench/lib/cluster.ts)
   * in the scenarios that spread over processes: on whenever `--nodes` is given, so every process
   * count in a run is measured alike (the sampler costs Postgres ~1% of a core)
   */
  clusterProbe: boolean
  log: (msg: string) => void
}

/**
 * CPU-ms readers for a system: its server process (every Herald process together) and, for
 * Herald, the whole Postgres.
 */
export function serverCpu (ctx: Ctx, sys: System): Record<string, () => number> {
  const pids = sys.nodes.length > 0 ? sys.nodes.map(n => n.pid) : [sys.pid]
  const sets: Record<string, () => number> = { server: () => pids.reduce((a, pid) => a + cpuMs(pid), 0) }
  if (sys.kind === 'herald' && ctx.env.postmasterPid !== undefined) {
    sets.postgres = () => treeCpuMs(ctx.env.postmasterPid!)
  }
  return sets
}

/**
 * Runs `body` for every run and every system, run-major (run 1 of each system, then run 2…),
 * so slow drift of the machine touches every system alike. A failure is recorded and the
 * bench goes on.
 */
export async function eachRun (
  ctx: Ctx, rec: Recorder, scenario: string, body: (kind: SystemKind, run: number) => Promise<void>
): Promise<void> {
  for (let run = 0; run < ctx.runs; run++) {
    for (const kind of ctx.systems) {
      ctx.log(`${scenario}: ${kind}, run ${run + 1}/${ctx.runs}`)
      try {
        await body(kind, run)
      } catch (err) {
        const msg = `${kind} run ${run + 1}: ${(err as Error).message}`
        rec.errors.push(msg)
        ctx.log(`  ERROR ${msg.split('\n').slice(0, 6).join('\n  ')}`)
      }
    }
  }
}

/** Starts a system for one run (Herald as `ctx.nodes` processes) and always stops it. */
export async function withSystem<T> (
  ctx: Ctx, kind: SystemKind, label: string, body: (sys: System) => Promise<T>
): Promise<T> {
  const sys = await startSystem(ctx.env, kind, label, ctx.profile ? label : undefined, ctx.nodes)
  try {
    return await body(sys)
  } finally {
    await sys.stop()
  }
}

/** Polls `query` (a single count) every `everyMs` until it reaches `target`; returns the epoch time it did. */
export async function pollCount (
  pool: pg.Pool, query: string, params: unknown[], target: number, timeoutMs: number, everyMs = 20
): Promise<number> {
  const t0 = performance.now()
  let last = -1
  while (performance.now() - t0 < timeoutMs) {
    const { rows } = await pool.query<{ n: number }>(query, params)
    last = Number(rows[0].n)
    if (last >= target) return performance.timeOrigin + performance.now()
    await sleep(everyMs)
  }
  throw new Error(`count reached ${last} of ${target} within ${timeoutMs} ms: ${query}`)
}
