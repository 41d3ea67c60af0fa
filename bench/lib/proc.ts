// Processes the bench starts, and what it reads about them from /proc.
//
// Every child is spawned `detached` (its own process group) and registered here; `stopAll()`
// ends each group (SIGTERM, then SIGKILL) and runs every cleanup, and it runs on error, on
// SIGINT/SIGTERM and, as a last resort, on exit. Nothing is ended by name: only the process
// groups this file started.
import { spawn, fork, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { readFileSync, readdirSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')

export interface Child {
  readonly name: string
  readonly child: ChildProcess
  readonly pid: number
  readonly exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  output: () => string
  /** SIGTERM to the process (or group), SIGKILL to the group after `timeoutMs` */
  stop: (timeoutMs?: number) => Promise<void>
  kill9: () => Promise<void>
}

const children = new Set<Child>()
const cleanups: Array<() => Promise<void> | void> = []

/** Registers work for `stopAll()` (temp dirs, databases, the embedded Postgres), run last-in first-out. */
export function onCleanup (fn: () => Promise<void> | void): void {
  cleanups.push(fn)
}

let stoppingAll: Promise<void> | undefined
/** Stops every child still running and runs every cleanup; safe to call more than once. */
export function stopAll (): Promise<void> {
  stoppingAll ??= (async () => {
    await Promise.all([...children].map(c => c.stop(5_000).catch(() => {})))
    while (cleanups.length > 0) {
      const fn = cleanups.pop()!
      try { await fn() } catch (err) { process.stderr.write(`bench cleanup failed: ${(err as Error).message}\n`) }
    }
  })()
  const done = stoppingAll
  void done.then(() => { stoppingAll = undefined })
  return done
}

process.on('exit', () => {
  for (const c of children) {
    try { process.kill(-c.pid, 'SIGKILL') } catch {}
  }
})

const MAX_OUTPUT = 64 * 1024

function track (name: string, child: ChildProcess, group: boolean): Child {
  if (child.pid === undefined) throw new Error(`${name}: spawn failed`)
  const pid = child.pid
  let out = ''
  const collect = (chunk: Buffer | string): void => {
    out += chunk.toString()
    if (out.length > MAX_OUTPUT) out = out.slice(-MAX_OUTPUT / 2)
  }
  child.stdout?.on('data', collect)
  child.stderr?.on('data', collect)
  let gone = false
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>(resolve => {
    child.once('exit', (code, signal) => { gone = true; children.delete(handle); resolve({ code, signal }) })
  })
  const signal = (sig: NodeJS.Signals, wholeGroup: boolean): void => {
    if (gone) return
    try { process.kill(wholeGroup && group ? -pid : pid, sig) } catch {}
  }
  const kill9 = async (): Promise<void> => {
    signal('SIGKILL', true)
    await exited
    // the leader is gone; anything it left in its group goes too
    if (group) { try { process.kill(-pid, 'SIGKILL') } catch {} }
  }
  const handle: Child = {
    name,
    child,
    pid,
    exited,
    output: () => out,
    stop: async (timeoutMs = 15_000) => {
      if (gone) { if (group) { try { process.kill(-pid, 'SIGKILL') } catch {} } return }
      signal('SIGTERM', false)
      const timer = setTimeout(() => { void kill9() }, timeoutMs)
      await exited
      clearTimeout(timer)
      if (group) { try { process.kill(-pid, 'SIGKILL') } catch {} }
    },
    kill9
  }
  children.add(handle)
  return handle
}

export function spawnTracked (name: string, command: string, args: string[], opts: SpawnOptions = {}): Child {
  const child = spawn(command, args, { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'], ...opts })
  return track(name, child, true)
}

/** The bench's environment without what would change how a child Node runs (a test runner's context, NODE_OPTIONS). */
export function childEnv (extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra }
  delete env.NODE_TEST_CONTEXT
  delete env.NODE_OPTIONS
  return env
}

/** A TypeScript module as a child with an IPC channel (`process.send`), run through tsx. */
export function forkTracked (
  name: string, modulePath: string, args: string[] = [], env: NodeJS.ProcessEnv = childEnv()
): Child {
  const child = fork(modulePath, args, {
    cwd: ROOT,
    // never inherit the parent's flags (a test runner's --test, a profiler's --cpu-prof)
    execArgv: ['--import', 'tsx'],
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    env,
    serialization: 'advanced'
  })
  return track(name, child, true)
}

/** A free TCP port on 127.0.0.1 (bound and released: good enough for a loopback bench). */
export async function freePort (): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const { port } = server.address() as net.AddressInfo
  await new Promise(resolve => server.close(resolve))
  return port
}

export const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

/** Epoch milliseconds with sub-millisecond precision, comparable across processes on this machine. */
export const now = (): number => performance.timeOrigin + performance.now()

// ---- /proc ---------------------------------------------------------------------------------

const CLK_TCK = 100 // sysconf(_SC_CLK_TCK) on Linux x86-64
const CORES = os.cpus().length

interface Stat { ppid: number, utime: number, stime: number, cutime: number, cstime: number }

function readStat (pid: number): Stat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ')
    // fields after "(comm)": state=0 ppid=1 … utime=11 stime=12 cutime=13 cstime=14
    return {
      ppid: Number(f[1]), utime: Number(f[11]), stime: Number(f[12]), cutime: Number(f[13]), cstime: Number(f[14])
    }
  } catch {
    return undefined
  }
}

/** CPU milliseconds (user + system) the process has used so far. */
export function cpuMs (pid: number): number {
  const s = readStat(pid)
  return s ? (s.utime + s.stime) * 1000 / CLK_TCK : NaN
}

/** Direct and indirect children of `pid`. */
export function descendants (pid: number): number[] {
  const byParent = new Map<number, number[]>()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const s = readStat(Number(entry))
    if (!s) continue
    const list = byParent.get(s.ppid) ?? []
    list.push(Number(entry))
    byParent.set(s.ppid, list)
  }
  const out: number[] = []
  const walk = (p: number): void => { for (const c of byParent.get(p) ?? []) { out.push(c); walk(c) } }
  walk(pid)
  return out
}

/**
 * CPU ms of a process tree: every live member, plus what the root has reaped from children
 * that already exited (cutime/cstime), so backends that come and go are still counted.
 */
export function treeCpuMs (rootPid: number): number {
  const root = readStat(rootPid)
  if (!root) return NaN
  let ticks = root.utime + root.stime + root.cutime + root.cstime
  for (const pid of descendants(rootPid)) {
    const s = readStat(pid)
    if (s) ticks += s.utime + s.stime
  }
  return ticks * 1000 / CLK_TCK
}

/** Resident set size in bytes. */
export function rssBytes (pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) * 1024 : NaN
  } catch {
    return NaN
  }
}

export function treeRssBytes (rootPid: number): number {
  return [rootPid, ...descendants(rootPid)].reduce((sum, pid) => sum + (rssBytes(pid) || 0), 0)
}

/** Whole-machine CPU: busy and total jiffies since boot, from /proc/stat. */
export function machineCpu (): { busy: number, total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]
  const v = line.trim().split(/\s+/).slice(1).map(Number)
  const idle = v[3] + (v[4] ?? 0)
  const total = v.reduce((a, b) => a + b, 0)
  return { busy: total - idle, total }
}

/**
 * CPU use of named process sets over an interval: `const m = cpuMeter({...}); …; m.read()` gives
 * each set's CPU ms, its share of one core, and the machine's busy share over the interval.
 */
export function cpuMeter (sets: Record<string, () => number>): { read: () => CpuReading } {
  const start = Object.fromEntries(Object.entries(sets).map(([k, f]) => [k, f()]))
  const t0 = performance.now()
  const m0 = machineCpu()
  return {
    read () {
      const wallMs = performance.now() - t0
      const m1 = machineCpu()
      const byName: CpuReading['sets'] = {}
      for (const [k, f] of Object.entries(sets)) {
        const ms = f() - start[k]
        byName[k] = { cpuMs: ms, core: ms / wallMs }
      }
      const total = m1.total - m0.total
      const machineBusy = total > 0 ? (m1.busy - m0.busy) / total : NaN
      // what the machine did besides the measured sets: other processes (other users of the machine, the kernel)
      const ours = Object.values(byName).reduce((a, s) => a + s.core, 0)
      return { wallMs, sets: byName, machineBusy, otherCores: Math.max(0, machineBusy * CORES - ours) }
    }
  }
}

export interface CpuReading {
  wallMs: number
  /** per set: CPU ms used, and that as a fraction of one core over the interval */
  sets: Record<string, { cpuMs: number, core: number }>
  /** fraction of all cores busy over the interval (1 = every core busy) */
  machineBusy: number
  /** cores' worth of CPU used by everything but the measured sets */
  otherCores: number
}
