// The orchestrator's side of the load generator: worker processes (bench/loadgen/worker.ts),
// each with its own loopback source address, driven over IPC.
import path from 'node:path'
import { forkTracked, ROOT, type Child, cpuMs } from './proc.js'
import type {
  CollectResult, ConnectRequest, ConnectResult, DeviceSpec, Request, SendRequest, SendResult, TrackRequest, WorkerEvent
} from '../loadgen/protocol.js'

const WORKER = path.join(ROOT, 'bench/loadgen/worker.ts')
/** Sockets per load-generator process: the machine allows 20,000 open files per process. */
export const MAX_DEVICES_PER_WORKER = 5_000

let addressCounter = 0
/** A fresh loopback source address, 127.0.x.y (x ≥ 1), for each worker. */
function nextLoopbackAddress (): string {
  const n = addressCounter++
  return `127.0.${1 + Math.floor(n / 250) % 250}.${1 + n % 250}`
}

export class Worker {
  private nextId = 1
  private readonly pending = new Map<number, { resolve: (v: any) => void, reject: (e: Error) => void }>()
  private doneWaiters: Array<(e: { at: number, unique: number }) => void> = []
  private lastDone: { at: number, unique: number } | undefined
  lostConnections = 0
  lostReason = ''

  private constructor (readonly name: string, readonly proc: Child, readonly localAddress: string) {
    proc.child.on('message', (msg: any) => {
      if (typeof msg?.id === 'number') {
        const p = this.pending.get(msg.id)
        if (!p) return
        this.pending.delete(msg.id)
        if (msg.error !== undefined) p.reject(new Error(`${name}: ${msg.error}`))
        else p.resolve(msg.result)
        return
      }
      const e = msg as WorkerEvent
      if (e.event === 'done') {
        this.lastDone = { at: e.at, unique: e.unique }
        for (const w of this.doneWaiters.splice(0)) w(this.lastDone)
      } else if (e.event === 'lost') {
        this.lostConnections = e.count
        this.lostReason = e.reason
      }
    })
    void proc.exited.then(exit => {
      const why = `${name} exited (${exit.code ?? exit.signal}): ${proc.output().slice(-2000)}`
      for (const p of this.pending.values()) p.reject(new Error(why))
      this.pending.clear()
    })
  }

  static async start (name: string): Promise<Worker> {
    const proc = forkTracked(name, WORKER)
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name} did not start: ${proc.output()}`)), 30_000)
      proc.child.once('message', () => { clearTimeout(timer); resolve() })
      void proc.exited.then(exit => {
        clearTimeout(timer)
        reject(new Error(`${name} exited at start (${exit.code ?? exit.signal}): ${proc.output()}`))
      })
    })
    return new Worker(name, proc, nextLoopbackAddress())
  }

  private call<T> (req: Request): Promise<T> {
    const id = this.nextId++
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve, reject })
      this.proc.child.send({ id, ...req })
    })
  }

  connect (args: Omit<ConnectRequest, 'localAddress'>): Promise<ConnectResult> {
    return this.call({ op: 'connect', args: { ...args, localAddress: this.localAddress } })
  }

  disconnect (idPrefix?: string): Promise<{ closed: number }> {
    return this.call({ op: 'disconnect', args: { idPrefix } })
  }

  async track (args: TrackRequest): Promise<void> {
    this.lastDone = undefined
    this.doneWaiters = []
    await this.call({ op: 'track', args })
    // IPC is ordered: every loss reported before the reset has arrived by now
    this.lostConnections = 0
  }

  /** Changes the count `waitDone` waits for (a time-bounded send got fewer accepted than planned). */
  async expect (expected: number): Promise<void> {
    await this.call({ op: 'expect', args: { expected } })
  }

  /** Resolves when the tracked count was reached, or rejects after `timeoutMs`. */
  waitDone (timeoutMs: number): Promise<{ at: number, unique: number }> {
    if (this.lastDone) return Promise.resolve(this.lastDone)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`${this.name}: not every message arrived within ${Math.round(timeoutMs / 1000)} s`))
      }, timeoutMs)
      this.doneWaiters.push(e => { clearTimeout(timer); resolve(e) })
    })
  }

  collect (): Promise<CollectResult> {
    return this.call({ op: 'collect', args: {} })
  }

  send (args: SendRequest): Promise<SendResult> {
    return this.call({ op: 'send', args })
  }

  cpuMs (): number {
    return cpuMs(this.proc.pid)
  }

  async stop (): Promise<void> {
    await this.proc.stop(5_000)
  }
}

/**
 * A set of devices spread over workers of at most `perWorker` sockets each. Device i is
 * `${idPrefix}${i}` of user `${userPrefix}${i}`. Each `connect(from, to)` splits its range
 * evenly over every worker, so every step of a ramp uses all of them.
 */
export class DeviceFleet {
  /** the device ranges each worker holds */
  private readonly ranges: Array<Array<[number, number]>>

  private constructor (readonly workers: Worker[], private readonly perWorker: number) {
    this.ranges = workers.map(() => [])
  }

  static async start (name: string, devices: number, perWorker = MAX_DEVICES_PER_WORKER): Promise<DeviceFleet> {
    const count = Math.max(1, Math.ceil(devices / perWorker))
    const workers = await Promise.all(Array.from({ length: count }, (_, i) => Worker.start(`${name}-${i}`)))
    return new DeviceFleet(workers, perWorker)
  }

  /** Connects devices [from, to), an even share on each worker, in parallel. */
  async connect (
    url: string, spec: Omit<DeviceSpec, 'from' | 'to'>, from: number, to: number,
    opts: { clean?: boolean, concurrency?: number, keepalive?: number } = {}
  ): Promise<ConnectResult> {
    const started = performance.now()
    const W = this.workers.length
    const jobs: Array<Promise<ConnectResult>> = []
    this.workers.forEach((w, k) => {
      const lo = from + Math.floor((to - from) * k / W)
      const hi = from + Math.floor((to - from) * (k + 1) / W)
      if (lo >= hi) return
      const held = this.ranges[k].reduce((a, [a0, a1]) => a + a1 - a0, 0)
      if (held + hi - lo > this.perWorker) {
        throw new Error(`${w.name} would hold ${held + hi - lo} devices, more than ${this.perWorker}`)
      }
      this.ranges[k].push([lo, hi])
      jobs.push(w.connect({
        url,
        spec: { ...spec, from: lo, to: hi },
        clean: opts.clean ?? false,
        concurrency: opts.concurrency ?? 50,
        keepalive: opts.keepalive ?? 60
      }))
    })
    const results = await Promise.all(jobs)
    return {
      connected: results.reduce((a, r) => a + r.connected, 0),
      failed: results.reduce((a, r) => a + r.failed, 0),
      errors: results.flatMap(r => r.errors).slice(0, 5),
      ms: performance.now() - started
    }
  }

  /** Disconnects every device (the sessions stay: clean=false) and forgets the ranges. */
  async disconnect (): Promise<void> {
    await Promise.all(this.workers.map(w => w.disconnect()))
    for (const r of this.ranges) r.length = 0
  }

  /** Arms every worker to count receipts; `expectedPerWorker(k)` is worker k's share. */
  async track (expectedPerWorker: (k: number) => number, samples = false): Promise<void> {
    await Promise.all(this.workers.map((w, k) => w.track({ expected: expectedPerWorker(k), samples })))
  }

  /** Devices of [from, to) that worker k holds. */
  share (k: number, from: number, to: number): number {
    return this.ranges[k].reduce((a, [lo, hi]) => a + Math.max(0, Math.min(to, hi) - Math.max(from, lo)), 0)
  }

  /** Waits for every worker's `done`; returns the latest receipt time, or throws with the counts so far. */
  async waitDone (timeoutMs: number): Promise<number> {
    const done = await Promise.all(this.workers.map(w => w.waitDone(timeoutMs)))
    return Math.max(...done.map(d => d.at))
  }

  async collect (): Promise<CollectResult[]> {
    return await Promise.all(this.workers.map(w => w.collect()))
  }

  cpuMs (): number {
    return this.workers.reduce((a, w) => a + w.cpuMs(), 0)
  }

  lost (): number {
    return this.workers.reduce((a, w) => a + w.lostConnections, 0)
  }

  async stop (): Promise<void> {
    await Promise.all(this.workers.map(w => w.stop()))
  }
}

export interface Merged {
  unique: number
  duplicates: number
  firstAt: number
  lastAt: number
  latencies: number[]
  sentAtLatencies: number[]
  /** the samples split by the process the message went through: the device's own or another (`--nodes`) */
  byProcess?: Record<'same' | 'other', { latencies: number[], sentAtLatencies: number[] }>
  lost: number
  eventLoopP99: number
  eventLoopMax: number
}

/** Sum of receipts over workers, and the merged latency samples. */
export function merge (results: CollectResult[]): Merged {
  const latencies: number[] = []
  const sentAt: number[] = []
  for (const r of results) {
    if (r.latencies) for (const v of r.latencies) latencies.push(v)
    if (r.sentAtLatencies) for (const v of r.sentAtLatencies) sentAt.push(v)
  }
  const firsts = results.map(r => r.firstAt).filter(t => t > 0)
  let byProcess: Merged['byProcess']
  for (const r of results) {
    if (!r.byProcess) continue
    byProcess ??= { same: { latencies: [], sentAtLatencies: [] }, other: { latencies: [], sentAtLatencies: [] } }
    for (const k of ['same', 'other'] as const) {
      for (const v of r.byProcess[k].latencies) byProcess[k].latencies.push(v)
      for (const v of r.byProcess[k].sentAtLatencies) byProcess[k].sentAtLatencies.push(v)
    }
  }
  return {
    unique: results.reduce((a, r) => a + r.unique, 0),
    duplicates: results.reduce((a, r) => a + r.duplicates, 0),
    firstAt: firsts.length ? Math.min(...firsts) : 0,
    lastAt: Math.max(0, ...results.map(r => r.lastAt)),
    latencies,
    sentAtLatencies: sentAt,
    byProcess,
    lost: results.reduce((a, r) => a + r.lost, 0),
    eventLoopP99: Math.max(...results.map(r => r.eventLoop.p99)),
    eventLoopMax: Math.max(...results.map(r => r.eventLoop.max))
  }
}
