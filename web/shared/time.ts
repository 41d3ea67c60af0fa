/** "3 min ago", "in 2 h", "just now": times relative to now, for lists; the exact time goes in a title. */
export function relativeTime (when: string | number | Date, now = Date.now()): string {
  const t = new Date(when).getTime()
  const diff = t - now
  const abs = Math.abs(diff)
  if (abs < 5_000) return 'just now'
  const units: Array<[number, string]> = [
    [86_400_000 * 365, 'y'], [86_400_000 * 30, 'mo'], [86_400_000, 'd'], [3_600_000, 'h'], [60_000, 'min'], [1000, 's']
  ]
  for (const [ms, unit] of units) {
    if (abs >= ms) {
      const n = Math.floor(abs / ms)
      return diff < 0 ? `${n} ${unit} ago` : `in ${n} ${unit}`
    }
  }
  return 'just now'
}

/** The exact local time, with milliseconds and the zone: for title attributes. */
export function exactTime (when: string | number | Date): string {
  const d = new Date(when)
  const pad = (n: number, w = 2): string => String(n).padStart(w, '0')
  const offset = -d.getTimezoneOffset()
  const zone = `UTC${offset >= 0 ? '+' : '-'}${pad(Math.floor(Math.abs(offset) / 60))}:${pad(Math.abs(offset) % 60)}`
  const date = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`
  return `${date} ${time} ${zone}`
}

/** A duration for humans: 12 ms, 3.4 s, 5 min, 2 h 10 min. */
export function duration (ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`
  if (ms < 3_600_000) return `${Math.round(ms / 60_000)} min`
  if (ms < 86_400_000) {
    const h = Math.floor(ms / 3_600_000)
    const m = Math.round((ms % 3_600_000) / 60_000)
    return m > 0 ? `${h} h ${m} min` : `${h} h`
  }
  return `${(ms / 86_400_000).toFixed(1)} d`
}
