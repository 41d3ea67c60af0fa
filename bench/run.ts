// `npm run bench [-- --quick] [--runs=N] [--only=throughput,latency,fanout,backlog,connections,restart,webhooks]
//                [--systems=herald,aedes,mosquitto] [--profile] [--tsx | --compiled] [--set=<size>:<value>]…
//                [--nodes=N | --nodes N | --nodes=1,2,3]`
// Prints the markdown report on stdout (progress on stderr) and writes bench/results/<timestamp>.json.
// It always exits 0 once it has printed its report: a benchmark never fails CI.
import { pathToFileURL } from 'node:url'
import { runBench, runQuick, SCENARIOS, type BenchOptions, type ScenarioName } from './index.js'
import { stopAll } from './lib/proc.js'
import type { SystemKind } from './lib/systems.js'
import { FULL, type Sizes } from './lib/context.js'

export { runBench, runQuick }

// options whose value may also come as the next argument (`--nodes 2`)
const TAKES_VALUE = ['--runs', '--only', '--systems', '--set', '--nodes']

function parseArgs (argv: string[]): BenchOptions {
  const opts: BenchOptions = {}
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    const eq = arg.indexOf('=')
    let [flag, value] = eq >= 0 ? [arg.slice(0, eq), arg.slice(eq + 1)] : [arg, undefined]
    if (value === undefined && TAKES_VALUE.includes(flag) && i + 1 < argv.length) value = argv[++i]
    switch (flag) {
      case '--quick': opts.quick = true; break
      case '--profile': opts.profile = true; break
      case '--tsx': opts.herald = 'tsx'; break
      case '--compiled': opts.herald = 'compiled'; break
      case '--no-json': opts.writeJson = false; break
      case '--runs': opts.runs = Math.max(1, Number(value)); break
      case '--only': {
        const names = (value ?? '').split(',').filter(Boolean)
        for (const n of names) {
          if (!(n in SCENARIOS)) throw new Error(`unknown scenario ${n}; one of ${Object.keys(SCENARIOS).join(', ')}`)
        }
        opts.only = names as ScenarioName[]
        break
      }
      case '--systems': opts.systems = (value ?? '').split(',').filter(Boolean) as SystemKind[]; break
      case '--nodes': {
        // --nodes 2, or --nodes 1,2,3: each count in turn, in the same run
        const counts = (value ?? '').split(',').filter(Boolean).map(Number)
        if (counts.length === 0 || counts.some(n => !Number.isInteger(n) || n < 1 || n > 8)) {
          throw new Error('--nodes=N or --nodes=1,2,3: Herald processes on one database, 1 to 8')
        }
        opts.nodes = counts
        break
      }
      case '--set': {
        // --set=httpConcurrency:400 (any field of Sizes in bench/lib/context.ts; lists comma-separated)
        const [k, v] = (value ?? '').split(':')
        if (!k || v === undefined || !(k in FULL)) {
          throw new Error(`--set=<size>:<value>, size one of ${Object.keys(FULL).join(', ')}`)
        }
        const parsed = v.includes(',') || Array.isArray(FULL[k as keyof Sizes]) ? v.split(',').map(Number) : Number(v)
        opts.sizes = { ...opts.sizes, [k]: parsed }
        break
      }
      case '--help': case '-h':
        process.stdout.write('npm run bench -- [--quick] [--runs=N] [--only=a,b] [--systems=herald,aedes,mosquitto] ' +
          '[--profile] [--tsx|--compiled] [--no-json] [--set=<size>:<value>] [--nodes=1,2,3]\n')
        process.exit(0)
        break
      default: throw new Error(`unknown option ${arg} (see --help)`)
    }
  }
  return opts
}

async function main (): Promise<void> {
  let interrupted = false
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (interrupted) process.exit(130)
      interrupted = true
      process.stderr.write(`\n[bench] ${signal}: stopping every process the bench started\n`)
      void stopAll().finally(() => process.exit(130))
    })
  }
  const report = await runBench(parseArgs(process.argv.slice(2)))
  process.stdout.write(report.markdown)
  if (report.jsonPath) process.stderr.write(`[bench] results: ${report.jsonPath}\n`)
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().then(() => process.exit(0), err => {
    process.stderr.write(`[bench] ${(err as Error).stack ?? String(err)}\n`)
    void stopAll().finally(() => process.exit(0))
  })
}
