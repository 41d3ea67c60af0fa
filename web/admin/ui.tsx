import { useEffect, useRef, useState, type ReactNode } from 'react'
import UPlot from 'uplot'
import { duration, exactTime, relativeTime } from '../shared/time'

/** Re-renders every `ms`, so relative times stay true. */
export function useNow (ms = 10_000): number {
  const [now, setNow] = useState(Date.now())
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), ms)
    return () => clearInterval(t)
  }, [ms])
  return now
}

/** A time shown relative ("3 min ago"), exact on hover. */
export function Time ({ at, empty = '—' }: { at: string | null | undefined, empty?: string }) {
  const now = useNow()
  if (!at) return <span className='muted'>{empty}</span>
  return <time dateTime={at} title={exactTime(at)}>{relativeTime(at, now)}</time>
}

export function Badge ({ kind, children, title }: { kind: string, children: ReactNode, title?: string }) {
  return <span className={`badge b-${kind}`} title={title}>{children}</span>
}

export function Empty ({ title, children }: { title: string, children?: ReactNode }) {
  return <div className='empty'><strong>{title}</strong>{children}</div>
}

export function ErrorBox ({ error }: { error: unknown }) {
  if (!error) return null
  return <div className='error' role='alert'>{error instanceof Error ? error.message : String(error)}</div>
}

export function Ms ({ ms }: { ms: number | null | undefined }) {
  if (ms === null || ms === undefined) return <span className='muted'>—</span>
  return <span title={`${Math.round(ms)} ms`}>{duration(ms)}</span>
}

export interface Series { label: string, values: Array<number | null>, color: string }

/**
 * A small uPlot line chart of per-minute values. uPlot draws on a canvas and is created once;
 * new data goes in with setData, and the chart follows its container's width.
 */
interface ChartProps { minutes: number[], series: Series[], unit?: string, height?: number, label: string }

export function Chart ({ minutes, series, unit, height = 200, label }: ChartProps) {
  const box = useRef<HTMLDivElement>(null)
  const plot = useRef<UPlot | undefined>(undefined)
  const key = series.map(s => s.label).join('|')
  useEffect(() => {
    const el = box.current!
    const ms = unit === 'ms'
    const axisStyle = (): UPlot.Axis => ({
      stroke: '#98a2b3', grid: { stroke: 'rgba(152,162,179,.15)' }, ticks: { stroke: 'rgba(152,162,179,.3)' }
    })
    const clock = (unixSeconds: number): string =>
      new Date(unixSeconds * 1000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
    const opts: UPlot.Options = {
      width: el.clientWidth || 600,
      height,
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true } },
      axes: [
        axisStyle(),
        { ...axisStyle(), size: ms ? 68 : 54, values: (_u, vals) => vals.map(v => ms ? duration(v) : String(v)) }
      ],
      series: [
        { value: (_u, v) => v === null ? '—' : clock(v) },
        // latency has gaps (quiet minutes): dots, so a lone minute still shows
        ...series.map(s => ({
          label: s.label,
          stroke: s.color,
          width: 2,
          fill: ms ? undefined : s.color + '18',
          points: ms ? { show: true, size: 6 } : undefined,
          value: (_u: UPlot, v: number | null) => v === null ? '—' : ms ? duration(v) : String(v)
        }))
      ]
    }
    plot.current = new UPlot(opts, [minutes, ...series.map(s => s.values)] as UPlot.AlignedData, el)
    const resize = new ResizeObserver(() => plot.current?.setSize({ width: el.clientWidth, height }))
    resize.observe(el)
    return () => {
      resize.disconnect()
      plot.current?.destroy()
      plot.current = undefined
    }
  }, [key, height, unit])
  useEffect(() => {
    plot.current?.setData([minutes, ...series.map(s => s.values)] as UPlot.AlignedData)
  }, [minutes, series])
  return <div className='chart' ref={box} role='img' aria-label={label} />
}

/** A value copied to the clipboard on click. */
export function CopyButton ({ text }: { text: string }) {
  const [done, setDone] = useState(false)
  return (
    <button type='button' onClick={() => { void navigator.clipboard?.writeText(text).then(() => setDone(true)) }}>
      {done ? 'Copied' : 'Copy'}
    </button>
  )
}

/**
 * Reads `read()` now and every `ms` after (for lists whose state changes while you look); `reload`
 * reads again at once, after an action. A new `key` starts over, showing nothing until it is read.
 */
export function usePolled<T> (read: () => Promise<T>, key: string, ms: number):
{ value: T | undefined, error: unknown, reload: () => void } {
  const [state, setState] = useState<{ key: string, value?: T, error?: unknown }>()
  const [version, setVersion] = useState(0)
  useEffect(() => {
    let stale = false
    const load = (): void => {
      read().then(
        value => { if (!stale) setState({ key, value }) },
        // a failed read keeps what was shown
        (error: unknown) => { if (!stale) setState(s => ({ ...(s?.key === key ? s : { key }), error })) })
    }
    load()
    const t = setInterval(load, ms)
    return () => { stale = true; clearInterval(t) }
  }, [key, ms, version])
  const mine = state?.key === key ? state : undefined
  return { value: mine?.value, error: mine?.error, reload: () => setVersion(v => v + 1) }
}
