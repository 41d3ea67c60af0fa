// Results: one value per (metric, system, run); tables with medians, min–max and ratios.
import { SYSTEM_LABEL, type SystemKind } from './systems.js'

export const SYSTEMS: SystemKind[] = ['herald', 'aedes', 'mosquitto']

export interface Metric {
  key: string
  label: string
  unit: string
  /** which way is better, for reading the ratio; 'info' rows get no ratio */
  better: 'higher' | 'lower' | 'info'
  values: Partial<Record<SystemKind, number[]>>
  /** why a system has no value (not applicable, not installed) */
  na: Partial<Record<SystemKind, string>>
  decimals?: number
}

export interface ScenarioResult {
  id: number
  title: string
  metrics: Metric[]
  notes: string[]
  errors: string[]
  /** the headline metric, for the summary and the targets */
  headline?: string
  target?: Target
  durationMs: number
}

export interface Target {
  text: string
  /** met when this returns true; undefined when it cannot be judged */
  check: (m: Metric) => boolean | undefined
}

export class Recorder {
  readonly metrics = new Map<string, Metric>()
  readonly notes: string[] = []
  readonly errors: string[] = []

  metric (key: string, label: string, unit: string, better: Metric['better'], decimals?: number): Metric {
    let m = this.metrics.get(key)
    if (!m) this.metrics.set(key, m = { key, label, unit, better, values: {}, na: {}, decimals })
    return m
  }

  add (key: string, system: SystemKind, value: number): void {
    const m = this.metrics.get(key)
    if (!m) throw new Error(`unknown metric ${key}`)
    if (!Number.isFinite(value)) return
    ;(m.values[system] ??= []).push(value)
  }

  na (key: string, system: SystemKind, reason: string): void {
    const m = this.metrics.get(key)
    if (m) m.na[system] = reason
  }

  result (id: number, title: string, durationMs: number, headline?: string, target?: Target): ScenarioResult {
    const metrics = [...this.metrics.values()]
    return { id, title, metrics, notes: this.notes, errors: this.errors, headline, target, durationMs }
  }
}

export function percentile (sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p / 100 * sorted.length) - 1))
  return sorted[i]
}

export function median (values: number[]): number {
  if (values.length === 0) return NaN
  const s = [...values].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2
}

export function fmt (v: number, decimals?: number): string {
  if (!Number.isFinite(v)) return '—'
  const d = decimals ?? (Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2)
  return v.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d })
}

function cell (m: Metric, system: SystemKind, available: Set<SystemKind>): string {
  const v = m.values[system]
  if (v && v.length > 0) {
    const med = fmt(median(v), m.decimals)
    if (v.length === 1) return med
    return `${med} (${fmt(Math.min(...v), m.decimals)}–${fmt(Math.max(...v), m.decimals)})`
  }
  if (m.na[system]) return `n/a: ${m.na[system]}`
  if (!available.has(system)) return 'not run'
  return 'error'
}

export function ratio (m: Metric, base: SystemKind): number {
  const h = m.values.herald
  const b = m.values[base]
  if (!h?.length || !b?.length) return NaN
  const mb = median(b)
  const mh = median(h)
  // a ratio of a negative or zero figure (an RSS that shrank, an idle 0.0 %) means nothing
  return mb <= 0 || mh < 0 ? NaN : mh / mb
}

/** A Markdown table row. */
const row = (cells: string[]): string => `| ${cells.join(' | ')} |`

function ratioCell (m: Metric, base: SystemKind): string {
  if (m.better === 'info') return ''
  const r = ratio(m, base)
  return Number.isFinite(r) ? `${fmt(r, 2)}×` : '—'
}

export function scenarioTable (s: ScenarioResult, available: Set<SystemKind>): string {
  const head = `| metric | ${SYSTEMS.map(k => SYSTEM_LABEL[k]).join(' | ')} | Herald ÷ aedes | Herald ÷ Mosquitto |`
  const sep = `|---|${SYSTEMS.map(() => '---:').join('|')}|---:|---:|`
  const rows = s.metrics.map(m => {
    const arrow = m.better === 'higher' ? ' ↑' : m.better === 'lower' ? ' ↓' : ''
    return row([
      `${m.label} (${m.unit})${arrow}`, ...SYSTEMS.map(k => cell(m, k, available)),
      ratioCell(m, 'aedes'), ratioCell(m, 'mosquitto')
    ])
  })
  return [head, sep, ...rows].join('\n')
}

/** One row per scenario: its headline metric, the ratios, and the target. */
export function summaryTable (scenarios: ScenarioResult[], available: Set<SystemKind>, quick: boolean): string {
  const head = row([
    'scenario', 'metric', ...SYSTEMS.map(k => SYSTEM_LABEL[k]),
    'Herald ÷ aedes', 'Herald ÷ Mosquitto', 'target', 'status'
  ])
  const sep = `|---|---|${SYSTEMS.map(() => '---:').join('|')}|---:|---:|---|---|`
  const rows = scenarios.map(s => {
    const m = s.metrics.find(x => x.key === s.headline)
    if (!m) {
      return row([
        `${s.id} ${s.title}`, '—', ...SYSTEMS.map(() => 'error'), '—', '—', s.target?.text ?? '',
        `error: ${s.errors[0]?.split('\n')[0] ?? 'no result'}`
      ])
    }
    const met = s.target?.check(m)
    const status = met === undefined ? 'not judged' : met ? 'met' : 'not met'
    return row([
      `${s.id} ${s.title}`, `${m.label} (${m.unit})`, ...SYSTEMS.map(k => cell(m, k, available)),
      ratioCell(m, 'aedes'), ratioCell(m, 'mosquitto'), s.target?.text ?? '',
      `${status}${quick && met !== undefined ? ' (quick scale)' : ''}`
    ])
  })
  return [head, sep, ...rows].join('\n')
}
