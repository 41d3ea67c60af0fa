// `npm run bench`: Herald against a bare aedes and Mosquitto, same workload, same run.
// See bench/README.md. runBench() and runQuick() never throw for a failed measurement: a
// failure is printed in its table and the run goes on.
import { execFile } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import pg from 'pg'
import { startEmbeddedPostgres } from '../server/db/embedded.js'
import { FULL, QUICK, type Ctx, type Sizes } from './lib/context.js'
import { padFor } from './loadgen/payload.js'
import { machineCpu, onCleanup, ROOT, sleep, stopAll } from './lib/proc.js'
import { scenarioTable, summaryTable, SYSTEMS, type ScenarioResult } from './lib/report.js'
import { findMosquitto, findPostmaster, type BenchEnv, type SystemKind } from './lib/systems.js'
import { summariseProfiles, type ProfileSummary } from './lib/profile.js'
import { throughput } from './scenarios/throughput.js'
import { latency } from './scenarios/latency.js'
import { fanout } from './scenarios/fanout.js'
import { backlog } from './scenarios/backlog.js'
import { connections } from './scenarios/connections.js'
import { restart } from './scenarios/restart.js'
import { webhooks } from './scenarios/webhooks.js'

const execFileAsync = promisify(execFile)

export const SCENARIOS = {
  throughput,
  latency,
  fanout,
  backlog,
  connections,
  restart,
  webhooks
} as const
export type ScenarioName = keyof typeof SCENARIOS
/** Scenarios that spread devices and senders over several Herald processes (`--nodes`); the others run on one. */
export const CLUSTER_SCENARIOS: ScenarioName[] = ['throughput', 'latency']

export interface BenchOptions {
  quick?: boolean
  /** runs per system (default 3, quick 1) */
  runs?: number
  /** only these scenarios (default: all) */
  only?: ScenarioName[]
  /** only these systems (default: all that are installed) */
  systems?: SystemKind[]
  /** a Postgres server to create the bench's databases on; default DATABASE_URL, else an embedded one */
  databaseUrl?: string
  /** Herald from a fresh tsc build (default in full mode) or from source through tsx (default in quick mode) */
  herald?: 'compiled' | 'tsx'
  /** run Herald with --cpu-prof into bench/profiles and summarise the top self-time functions */
  profile?: boolean
  /** write bench/results/<timestamp>.json (default true) */
  writeJson?: boolean
  /** progress lines (default: stderr) */
  log?: (line: string) => void
  /** override scenario sizes */
  sizes?: Partial<Sizes>
  /**
   * Herald as this many processes on one database, each count in turn (`--nodes 1,2,3`), for
   * the CLUSTER_SCENARIOS; the baselines run beside each. Default [1], without the per-process
   * measurements; given, every count gets them.
   */
  nodes?: number[]
}

export interface BenchReport {
  markdown: string
  json: unknown
  jsonPath?: string
  scenarios: ScenarioResult[]
}

export interface Machine {
  cpu: string
  cores: number
  memoryGiB: number
  os: string
  node: string
  postgres: string
  mosquitto: string
  aedes: string
  ws: string
  mqttjs: string
  heraldBuild: string
  fileLimit: string
}

/** Quick mode: every scenario at small scale, one run, in well under two minutes. */
export async function runQuick (opts: Omit<BenchOptions, 'quick'> = {}): Promise<BenchReport> {
  return await runBench({ ...opts, quick: true })
}

export async function runBench (opts: BenchOptions = {}): Promise<BenchReport> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`[bench] ${line}\n`))
  const quick = opts.quick ?? false
  const startedAt = new Date()
  const t0 = performance.now()
  const tmpDir = await mkdtemp(path.join(os.tmpdir(), 'herald-bench-'))
  // as root, the embedded Postgres runs as `postgres` and must be able to walk into its data dir
  await chmod(tmpDir, 0o711)
  onCleanup(() => rm(tmpDir, { recursive: true, force: true }))
  const scenarios: ScenarioResult[] = []
  const notes: string[] = []
  let machine: Machine | undefined
  let profiles: ProfileSummary | undefined
  try {
    // Postgres: the given server, or an embedded one in the temp dir
    const given = opts.databaseUrl ?? process.env.DATABASE_URL
    let pgServerUrl: string
    let postmasterPid: number | undefined
    if (given) {
      pgServerUrl = given
      postmasterPid = await findPostmaster(given)
      notes.push('Postgres: the server at DATABASE_URL; the bench creates and drops its own databases there.')
    } else {
      log('starting an embedded Postgres')
      const dataDir = path.join(tmpDir, 'pg')
      const embedded = await startEmbeddedPostgres({
        dataDir,
        log: { info () {}, warn: (_o: unknown, m?: string) => log(`postgres: ${m ?? ''}`) }
      })
      onCleanup(() => embedded.stop())
      pgServerUrl = embedded.url
      const pidFile = path.join(dataDir, 'postgres', 'postmaster.pid')
      postmasterPid = existsSync(pidFile)
        ? Number(readFileSync(pidFile, 'utf8').split('\n')[0])
        : await findPostmaster(pgServerUrl)
      notes.push('Postgres: embedded (server/db/embedded.ts) in a temporary directory, default settings, fsync on.')
    }

    const mode = opts.herald ?? (quick ? 'tsx' : 'compiled')
    const herald = mode === 'compiled'
      ? await buildHerald(log)
      : {
          args: ['--import', 'tsx', 'server/main.ts'],
          note: 'from source through tsx (`node --import tsx server/main.ts`)'
        }
    notes.push(`Herald ran ${herald.note}.`)

    const mosquittoPath = findMosquitto()
    const wanted = opts.systems ?? SYSTEMS
    const systems = wanted.filter(k => k !== 'mosquitto' || mosquittoPath !== undefined)
    if (wanted.includes('mosquitto') && !mosquittoPath) {
      notes.push('Mosquitto is not installed (no mosquitto binary): its column is empty. ' +
        'Debian: `apt-get install mosquitto`.')
      log('mosquitto binary not found: Mosquitto is left out')
    }

    const env: BenchEnv = {
      tmpDir,
      pgServerUrl,
      postmasterPid,
      heraldArgs: herald.args,
      heraldMode: mode,
      mosquittoPath,
      profileDir: opts.profile ? path.join(ROOT, 'bench', 'profiles', startedAt.toISOString().replace(/[:.]/g, '-')) : undefined
    }
    machine = await describeMachine(pgServerUrl, mosquittoPath, herald.note)
    const ctx: Ctx = {
      env,
      quick,
      runs: opts.runs ?? (quick ? 1 : 3),
      sizes: { ...(quick ? QUICK : FULL), ...opts.sizes },
      systems,
      pad: padFor(),
      profile: opts.profile ?? false,
      nodes: 1,
      clusterProbe: opts.nodes !== undefined,
      log
    }
    const names = opts.only ?? (Object.keys(SCENARIOS) as ScenarioName[])
    const nodeCounts = opts.nodes ?? [1]
    if (nodeCounts.some(n => n > 1) && names.some(n => !CLUSTER_SCENARIOS.includes(n))) {
      notes.push(`--nodes applies to ${CLUSTER_SCENARIOS.join(' and ')}; the other scenarios ran once, with one ` +
        'Herald process.')
    }
    // scenario-major: each scenario at every process count in turn, so the counts are measured close in time
    const runs = names.flatMap(name => CLUSTER_SCENARIOS.includes(name)
      ? nodeCounts.map(nodes => ({ name, nodes }))
      : [{ name, nodes: 1 }])
    for (const { name, nodes } of runs) {
      ctx.nodes = nodes
      if (nodes > 1) log(`${name} with Herald as ${nodes} processes`)
      const s0 = performance.now()
      try {
        const background = await backgroundLoad()
        const busy = `${(background * 100).toFixed(0)}% busy`
        if (background > 0.15) {
          log(`the machine is ${busy} before ${name} starts: other processes compete with the bench`)
        }
        const result = await SCENARIOS[name](ctx)
        result.notes.push(
          `Before this scenario, with the bench idle, the machine was ${busy} (all ${os.cpus().length} cores)` +
          `${background > 0.15 ? ': other processes competed with it, its figures are low' : ''}.`)
        scenarios.push(result)
      } catch (err) {
        const msg = (err as Error).stack ?? String(err)
        log(`scenario ${name} failed: ${msg}`)
        scenarios.push({
          id: Object.keys(SCENARIOS).indexOf(name) + 1,
          title: nodes > 1 ? `${name}, ${nodes} Herald processes` : name,
          metrics: [],
          notes: [],
          errors: [msg],
          durationMs: performance.now() - s0
        })
      }
      log(`${name} took ${((performance.now() - s0) / 1000).toFixed(1)} s`)
    }
    if (env.profileDir) {
      profiles = await summariseProfiles(env.profileDir).catch(err => {
        notes.push(`profile summary failed: ${(err as Error).message}`)
        return undefined
      })
    }
  } catch (err) {
    notes.push(`bench setup failed: ${(err as Error).stack ?? String(err)}`)
    log(`setup failed: ${(err as Error).stack ?? String(err)}`)
  } finally {
    await stopAll()
  }

  const durationMs = performance.now() - t0
  const available = new Set<SystemKind>(scenarios.length > 0
    ? (opts.systems ?? SYSTEMS).filter(k => k !== 'mosquitto' || findMosquitto())
    : [])
  const markdown = render({ scenarios, machine, notes, quick, durationMs, available, profiles, startedAt })
  const json = {
    startedAt: startedAt.toISOString(),
    quick,
    durationMs,
    machine,
    notes,
    scenarios: scenarios.map(s => ({ ...s, target: s.target?.text })),
    profiles
  }
  let jsonPath: string | undefined
  if (opts.writeJson ?? true) {
    const dir = path.join(ROOT, 'bench', 'results')
    await mkdir(dir, { recursive: true })
    jsonPath = path.join(dir, `${startedAt.toISOString().replace(/[:.]/g, '-')}${quick ? '-quick' : ''}.json`)
    await writeFile(jsonPath, JSON.stringify(json, null, 2) + '\n')
  }
  return { markdown, json, jsonPath, scenarios }
}

function render ({ scenarios, machine, notes, quick, durationMs, available, profiles, startedAt }: {
  scenarios: ScenarioResult[],
  machine?: Machine,
  notes: string[],
  quick: boolean,
  durationMs: number,
  available: Set<SystemKind>,
  profiles?: ProfileSummary,
  startedAt: Date
}): string {
  const out: string[] = []
  out.push(`# Herald benchmark${quick ? ' (quick mode: small counts, one run — not comparable with the targets)' : ''}`)
  out.push('')
  out.push(`${startedAt.toISOString()}, ${(durationMs / 1000).toFixed(0)} s. ` +
    'Median of the runs, (min–max) when there was more than one; ↑ higher is better, ↓ lower is better; ' +
    'a ratio is Herald\'s median ÷ the baseline\'s.')
  if (machine) {
    out.push('')
    out.push(`**Machine:** ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB RAM, ${machine.os}; ` +
      `Node ${machine.node}; Postgres ${machine.postgres}; Mosquitto ${machine.mosquitto}; ` +
      `aedes ${machine.aedes}, ws ${machine.ws}, mqtt.js ${machine.mqttjs}; ` +
      `open files ${machine.fileLimit} per process.`)
    out.push('The load generator (mqtt.js devices, HTTP/MQTT senders, in separate Node processes) runs on the same ' +
      'cores as the server and its Postgres: every figure includes that contention, and the "load generator" rows ' +
      'show how busy it was.')
  }
  for (const n of notes) out.push('', n)
  out.push('', '## Summary', '', summaryTable([...scenarios].sort((a, b) => a.id - b.id), available, quick))
  for (const s of [...scenarios].sort((a, b) => a.id - b.id)) {
    out.push('', `## ${s.id}. ${s.title}`, '')
    if (s.metrics.length > 0) out.push(scenarioTable(s, available))
    for (const n of s.notes) out.push('', `- ${n}`)
    for (const e of s.errors) out.push('', `- **error:** ${e.split('\n').slice(0, 4).join(' / ')}`)
    out.push('', `_${(s.durationMs / 1000).toFixed(0)} s_`)
  }
  if (profiles) {
    out.push('', '## Herald CPU profile (--profile)', '', profiles.markdown)
  }
  return out.join('\n') + '\n'
}

/** The share of all cores busy over `ms` while the bench itself does nothing. */
async function backgroundLoad (ms = 1_000): Promise<number> {
  const a = machineCpu()
  await sleep(ms)
  const b = machineCpu()
  return b.total > a.total ? (b.busy - a.busy) / (b.total - a.total) : 0
}

/** tsc into a fresh directory under bench/.build (migrations linked beside it, as in dist/). */
async function buildHerald (log: (l: string) => void): Promise<{ args: string[], note: string }> {
  const outDir = path.join(ROOT, 'bench', '.build', `herald-${process.pid}-${Date.now()}`)
  onCleanup(() => rm(outDir, { recursive: true, force: true }))
  log('compiling Herald (tsc)')
  let warning = ''
  try {
    const tsc = path.join(ROOT, 'node_modules/typescript/bin/tsc')
    await execFileAsync(process.execPath, [tsc, '-p', 'tsconfig.json', '--outDir', outDir], {
      cwd: ROOT, maxBuffer: 16 * 1024 * 1024
    })
  } catch (err) {
    warning = ` (tsc reported errors: ${String((err as { stdout?: string }).stdout ?? err).split('\n')[0]})`
  }
  const main = path.join(outDir, 'server', 'main.js')
  if (!existsSync(main)) {
    log(`compile failed${warning}; running Herald through tsx`)
    return {
      args: ['--import', 'tsx', 'server/main.ts'],
      note: `from source through tsx, because the tsc build failed${warning}`
    }
  }
  // migrate.ts looks for ../../migrations from server/db, as dist/ does
  await symlink(path.join(ROOT, 'migrations'), path.join(outDir, 'migrations'))
  // the flags of `npm start` (package.json)
  return {
    args: ['--enable-source-maps', '--max-semi-space-size=32', main],
    note: 'compiled (tsc, `node --enable-source-maps --max-semi-space-size=32 …/server/main.js`, ' +
      `as \`npm start\` runs it)${warning}`
  }
}

async function describeMachine (
  pgServerUrl: string, mosquittoPath: string | undefined, heraldBuild: string
): Promise<Machine> {
  const cpuInfo = readFileSync('/proc/cpuinfo', 'utf8')
  const model = /model name\s*:\s*(.+)/.exec(cpuInfo)?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown'
  let postgres = 'unknown'
  const c = new pg.Client({ connectionString: pgServerUrl })
  try {
    await c.connect()
    postgres = (await c.query<{ v: string }>("select current_setting('server_version') as v")).rows[0].v
  } catch {} finally { await c.end().catch(() => {}) }
  let mosquitto = 'not installed'
  if (mosquittoPath) {
    const r = await execFileAsync(mosquittoPath, ['-h']).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }))
    mosquitto = /mosquitto version (\S+)/.exec(r.stdout)?.[1] ?? 'unknown'
  }
  const version = (pkg: string): string => {
    try {
      return JSON.parse(readFileSync(path.join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8')).version
    } catch {
      return 'unknown'
    }
  }
  let fileLimit = 'unknown'
  try { fileLimit = /Max open files\s+(\d+)/.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1] ?? fileLimit } catch {}
  return {
    cpu: model,
    cores: os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    postgres,
    mosquitto,
    aedes: version('aedes'),
    ws: version('ws'),
    mqttjs: version('mqtt'),
    heraldBuild,
    fileLimit
  }
}
