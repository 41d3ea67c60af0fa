// `--profile`: Herald runs with `node --cpu-prof`; this sums each .cpuprofile's samples by
// function (self time) and lists the top ones, per profile and over all of them.
import { readdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import { fmt } from './report.js'

interface CpuProfile {
  nodes: Array<{ id: number, callFrame: { functionName: string, url: string, lineNumber: number }, hitCount?: number }>
  startTime: number
  endTime: number
  samples: number[]
  timeDeltas: number[]
}

export interface ProfileSummary {
  dir: string
  files: string[]
  markdown: string
  top: Array<{ fn: string, selfMs: number, share: number }>
}

const TOP = 25

function frameName (cf: CpuProfile['nodes'][number]['callFrame'], root: string): string {
  const fn = cf.functionName || '(anonymous)'
  if (!cf.url) return fn
  let where = cf.url.replace(/^file:\/\//, '')
  const nm = where.lastIndexOf('/node_modules/')
  if (nm >= 0) where = where.slice(nm + '/node_modules/'.length)
  else if (where.startsWith(root)) where = where.slice(root.length + 1)
  return `${fn} ${where}:${cf.lineNumber + 1}`
}

/** Self time per function (µs), from the samples and their time deltas. */
function selfTimes (p: CpuProfile, root: string): { byFn: Map<string, number>, totalUs: number } {
  const byId = new Map(p.nodes.map(n => [n.id, n]))
  const byFn = new Map<string, number>()
  let total = 0
  for (let i = 0; i < p.samples.length; i++) {
    const node = byId.get(p.samples[i])
    // a sample's time is the delta to the next sample
    const dt = p.timeDeltas[i + 1] ?? 0
    if (!node || dt <= 0) continue
    total += dt
    const name = frameName(node.callFrame, root)
    byFn.set(name, (byFn.get(name) ?? 0) + dt)
  }
  return { byFn, totalUs: total }
}

function table (byFn: Map<string, number>, totalUs: number): string {
  const rows = [...byFn.entries()].sort((a, b) => b[1] - a[1]).slice(0, TOP)
  return ['| self ms | share | function |', '|---:|---:|---|',
    ...rows.map(([fn, us]) => `| ${fmt(us / 1000, 0)} | ${fmt(us / totalUs * 100, 1)}% | \`${fn.replace(/\|/g, '\\|')}\` |`)].join('\n')
}

export async function summariseProfiles (dir: string): Promise<ProfileSummary | undefined> {
  let files: string[]
  try { files = (await readdir(dir)).filter(f => f.endsWith('.cpuprofile')).sort() } catch { return undefined }
  if (files.length === 0) return undefined
  const root = path.resolve(dir, '../../..')
  const all = new Map<string, number>()
  const parts: string[] = []
  for (const f of files) {
    const p = JSON.parse(await readFile(path.join(dir, f), 'utf8')) as CpuProfile
    const { byFn, totalUs } = selfTimes(p, root)
    for (const [k, v] of byFn) all.set(k, (all.get(k) ?? 0) + v)
    const idle = byFn.get('(idle)') ?? 0
    const heading = `### ${f}\n\n${fmt(totalUs / 1e6, 1)} s profiled, ${fmt((totalUs - idle) / 1e6, 1)} s on CPU`
    parts.push(`${heading}\n\n${table(byFn, totalUs)}`)
  }
  const busy = new Map([...all].filter(([k]) => k !== '(idle)' && k !== '(program)'))
  const busyUs = [...busy.values()].reduce((a, b) => a + b, 0)
  const intro = `Profiles in \`${path.relative(root, dir)}\`. ` +
    `Top ${TOP} functions by self time over all profiles, idle and "(program)" left out (shares of the rest). ` +
    'V8 samples on wall-clock time: a native call such as `writev` (socket writes) also collects the time ' +
    'the thread sat descheduled inside it, which on 2 busy cores is a lot — ' +
    'compare with the scenario\'s server CPU from /proc.'
  const markdown = [intro, '', table(busy, busyUs), '', ...parts].join('\n')
  const top = [...busy.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, TOP)
    .map(([fn, us]) => ({ fn, selfMs: us / 1000, share: us / busyUs }))
  return { dir, files, markdown, top }
}
