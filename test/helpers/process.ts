// The REAL server as a child process (`node --import tsx server/main.ts`, or `node server/main.js`
// when the tests run compiled: test/helpers/compiledTree.ts), for tests that
// restart it, SIGTERM it or kill -9 it. Every process is spawned `detached` (its own process
// group) and remembered here; call `killAllServers()` in `after` so a failed test leaves
// nothing running (an `exit` hook is a last resort for a runner that dies).
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { ADMIN_PASSWORD, API_KEY, JWT_SECRET, apiClient, type ApiCall } from './herald.js'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
/** How to start the server: compiled when this file runs from the test run's compiled tree. */
const SERVER_ARGS = existsSync(path.join(ROOT, '.compiled-tree'))
  ? ['--enable-source-maps', 'server/main.js']
  : ['--import', 'tsx', 'server/main.ts']

/** Every variable Herald reads: never inherited from the caller's environment. */
const HERALD_VARS = ['PORT', 'HOST', 'DATABASE_URL', 'DATABASE_POOL_SIZE', 'DATA_DIR', 'JWT_SECRET', 'JWT_PUBLIC_KEY',
  'JWT_PRIVATE_KEY', 'API_KEY', 'ADMIN_PASSWORD', 'MQTT_PORT', 'LOG_LEVEL', 'SHUTDOWN_TIMEOUT_MS',
  'MAX_INFLIGHT_PER_DEVICE',
  'STALLED_DEVICE_TIMEOUT_MS', 'TEST_DATABASE_URL', 'NODE_TEST_CONTEXT', 'NODE_OPTIONS']

export interface Exit { code: number | null, signal: NodeJS.Signals | null }

export interface ServerProcess {
  readonly child: ChildProcess
  readonly pid: number
  /** set once the server is ready */
  url: string
  wsUrl: string
  /** what the process printed so far */
  stdout: () => string
  stderr: () => string
  /** stdout and stderr, for assertion messages */
  output: () => string
  /** resolves with the match once stdout matches `pattern` (the banner comes after "herald ready") */
  waitForStdout: (pattern: RegExp, timeoutMs?: number) => Promise<RegExpExecArray>
  /** resolves when the process has exited */
  readonly exited: Promise<Exit>
  /** SIGKILL to the whole process group; resolves once the process is gone */
  kill9: () => Promise<Exit>
  /** SIGTERM; resolves with the exit once the process is gone (SIGKILL after `timeoutMs`) */
  term: (timeoutMs?: number) => Promise<Exit & { ms: number }>
  /** fetch against the server, by default with the test API key */
  api: ApiCall
  /** a device token for `user`, signed by the server */
  token: (user: string, ttl?: number) => Promise<string>
}

const running = new Set<ServerProcess>()

const killRunning = (): void => {
  for (const p of running) {
    try { process.kill(-p.pid, 'SIGKILL') } catch {}
  }
}
process.on('exit', killRunning)
// the test runner stops a file that runs too long with SIGTERM (an interrupted run too): node
// would end without 'exit', and the servers, in process groups of their own, would outlive it
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    killRunning()
    process.exit(signal === 'SIGTERM' ? 143 : 130)
  })
}

/** Kills every server process spawned by this file that is still running. */
export async function killAllServers (): Promise<void> {
  await Promise.all([...running].map(p => p.kill9()))
}

export interface SpawnOptions {
  /** environment for Herald; `undefined` values remove a variable */
  env: Record<string, string | undefined>
  /** resolve when ready (default) or only hand back the process */
  waitReady?: boolean
  readyTimeoutMs?: number
}

/** The test defaults: a known secret, key and password, a free port on 127.0.0.1, info logs. */
export function serverEnv (
  databaseUrl: string, overrides: Record<string, string | undefined> = {}
): Record<string, string | undefined> {
  return {
    DATABASE_URL: databaseUrl,
    PORT: '0',
    HOST: '127.0.0.1',
    JWT_SECRET,
    API_KEY,
    ADMIN_PASSWORD,
    // four files at once, some with several servers each, share one Postgres' 100 connections
    DATABASE_POOL_SIZE: '5',
    LOG_LEVEL: 'info',
    ...overrides
  }
}

/**
 * Starts the server (SERVER_ARGS). Resolves once it logged "herald ready" (or printed
 * its banner), with `url` set; rejects with its output if it exits first or takes too long.
 */
export async function spawnServer (
  { env, waitReady = true, readyTimeoutMs = 20_000 }: SpawnOptions
): Promise<ServerProcess> {
  const childEnv: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !HERALD_VARS.includes(k)) childEnv[k] = v
  for (const [k, v] of Object.entries(env)) if (v !== undefined) childEnv[k] = v

  const child = spawn(process.execPath, SERVER_ARGS, {
    cwd: ROOT,
    env: childEnv,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe']
  })
  if (child.pid === undefined) {
    throw await new Promise<Error>(resolve => child.once('error', resolve))
  }
  const pid = child.pid
  let out = ''
  let err = ''
  child.stdout!.setEncoding('utf8')
  child.stderr!.setEncoding('utf8')
  child.stderr!.on('data', (chunk: string) => { err += chunk })

  let gone = false
  const exited = new Promise<Exit>(resolve => {
    child.once('exit', (code, signal) => {
      gone = true
      running.delete(proc)
      resolve({ code, signal })
    })
  })

  const kill9 = async (): Promise<Exit> => {
    if (!gone) {
      try { process.kill(-pid, 'SIGKILL') } catch {}
    }
    return await exited
  }

  const term = async (timeoutMs = 15_000): Promise<Exit & { ms: number }> => {
    const started = Date.now()
    if (!gone) process.kill(pid, 'SIGTERM')
    const timer = setTimeout(() => { void kill9() }, timeoutMs)
    const exit = await exited
    clearTimeout(timer)
    return { ...exit, ms: Date.now() - started }
  }

  const { api, token } = apiClient(() => proc.url)

  const proc: ServerProcess = {
    child,
    pid,
    url: '',
    wsUrl: '',
    stdout: () => out,
    stderr: () => err,
    output: () => `--- stdout ---\n${out}\n--- stderr ---\n${err}`,
    waitForStdout: (pattern, timeoutMs = 10_000) => new Promise((resolve, reject) => {
      const check = (): void => {
        const match = pattern.exec(out)
        if (!match) return
        stdoutWaiters.delete(check)
        clearTimeout(timer)
        resolve(match)
      }
      const timer = setTimeout(() => {
        stdoutWaiters.delete(check)
        reject(new Error(`stdout never matched ${pattern}\n${proc.output()}`))
      }, timeoutMs)
      stdoutWaiters.add(check)
      check()
    }),
    exited,
    kill9,
    term,
    api,
    token
  }
  running.add(proc)

  let onReady: ((url: string) => void) | undefined
  const stdoutWaiters = new Set<() => void>()
  let pending = ''
  child.stdout!.on('data', (chunk: string) => {
    out += chunk
    for (const w of [...stdoutWaiters]) w()
    pending += chunk
    const lines = pending.split('\n')
    pending = lines.pop()!
    for (const line of lines) {
      const url = readyUrl(line)
      if (url !== undefined) onReady?.(url)
    }
  })

  if (!waitReady) return proc
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server not ready after ${readyTimeoutMs} ms`)), readyTimeoutMs)
      onReady = url => { clearTimeout(timer); resolve(url) }
      void exited.then(exit => {
        clearTimeout(timer)
        reject(new Error(`server exited before it was ready (code ${exit.code}, signal ${exit.signal})`))
      })
    })
    proc.url = url
    proc.wsUrl = url.replace(/^http/, 'ws') + '/mqtt'
  } catch (e) {
    await kill9()
    throw new Error(`${(e as Error).message}\n${proc.output()}`)
  }
  return proc
}

/** The URL in a "herald ready" JSON log line or in the banner's "Herald is running at …" line. */
function readyUrl (line: string): string | undefined {
  const trimmed = line.trim()
  if (trimmed.startsWith('{')) {
    try {
      const entry = JSON.parse(trimmed) as { msg?: unknown, url?: unknown }
      if (entry.msg === 'herald ready' && typeof entry.url === 'string') return entry.url
    } catch {}
    return undefined
  }
  return /Herald is running at (http:\/\/\S+)/.exec(trimmed)?.[1]
}

/** Parses the JSON log lines a server printed on stdout. */
export function logLines (stdout: string): Array<Record<string, any>> {
  const entries: Array<Record<string, any>> = []
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('{')) continue
    try { entries.push(JSON.parse(line)) } catch {}
  }
  return entries
}
