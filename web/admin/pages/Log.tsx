import { useEffect, useRef, useState, type FormEvent } from 'react'
import { api, query, STATUSES, type AdminLogPage, type AdminMessageRow } from '../api'
import { Link, navigate } from '../router'
import { Badge, Empty, ErrorBox, Ms, Time } from '../ui'

const FILTERS = ['messageId', 'user', 'device', 'status', 'since', 'until', 'text'] as const
type Filters = Partial<Record<typeof FILTERS[number], string>>

/** `<input type=datetime-local>` speaks local time without a zone; the API wants ISO 8601. */
const toIso = (local: string | undefined): string | undefined => local ? new Date(local).toISOString() : undefined
const toLocal = (iso: string | undefined): string => {
  if (!iso) return ''
  const d = new Date(iso)
  if (Number.isNaN(d.getTime())) return ''
  return new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 16)
}

export function Target ({ t }: { t: AdminMessageRow['target'] }) {
  if (t.kind === 'user') {
    return <span>user <Link to={`/admin/users/${encodeURIComponent(t.user ?? '')}`}>{t.user}</Link></span>
  }
  if (t.kind === 'topic') return <span>topic <strong>{t.topic}</strong></span>
  // the first few users, and how many more there are
  const shown = t.users?.join(', ')
  const more = (t.userCount ?? 0) - (t.users?.length ?? 0)
  return <span title={shown}>{t.userCount} users: {shown}{more > 0 ? ` +${more}` : ''}</span>
}

export function StatusCounts ({ counts }: { counts: AdminMessageRow['counts'] }) {
  const shown = STATUSES.filter(s => counts[s] > 0)
  if (shown.length === 0) return <span className='muted small'>no devices</span>
  return (
    <div className='badges'>
      {shown.map(s => <Badge key={s} kind={s}>{s} <span className='n'>{counts[s]}</span></Badge>)}
    </div>
  )
}

export function LogPage ({ search }: { search: URLSearchParams }) {
  const filters: Filters = {}
  for (const f of FILTERS) {
    const v = search.get(f)
    if (v) filters[f] = v
  }
  const cursor = search.get('cursor') ?? undefined
  const key = JSON.stringify(filters)
  const [form, setForm] = useState<Filters>(filters)
  const [rows, setRows] = useState<AdminMessageRow[]>()
  const [next, setNext] = useState<string | null>(null)
  const [error, setError] = useState<unknown>()
  const [tookMs, setTookMs] = useState<number>()
  // cursors of the pages before this one, so "Newer" goes back exactly
  const back = useRef<{ key: string, stack: Array<string | undefined> }>({ key, stack: [] })
  if (back.current.key !== key) back.current = { key, stack: [] }

  useEffect(() => { setForm(filters) }, [key])
  useEffect(() => {
    let stale = false
    const started = performance.now()
    setError(undefined)
    api<AdminLogPage>('GET', `/log${query({ ...filters, cursor })}`)
      .then(r => {
        if (stale) return
        setRows(r.items)
        setNext(r.next)
        setTookMs(performance.now() - started)
      })
      .catch(err => { if (!stale) setError(err) })
    return () => { stale = true }
  }, [key, cursor])

  const url = (params: Filters & { cursor?: string }): string => `/admin/log${query(params)}`
  const apply = (e: FormEvent): void => {
    e.preventDefault()
    navigate(url({ ...form, since: toIso(form.since), until: toIso(form.until) }))
  }
  const older = (): void => {
    back.current.stack.push(cursor)
    navigate(url({ ...filters, cursor: next ?? undefined }))
  }
  const newer = (): void => {
    const prev = back.current.stack.pop()
    navigate(url({ ...filters, cursor: prev }))
  }
  const set = (name: keyof Filters) =>
    (e: { target: { value: string } }) => setForm({ ...form, [name]: e.target.value })
  const filtered = Object.keys(filters).length > 0
  const emptyHint = filtered
    ? 'Widen the time range or clear a filter.'
    : <>Messages appear here once a backend sends one, or <Link to='/admin/send'>send a test push</Link>.</>

  return (
    <>
      <div className='pagehead'>
        <div>
          <h1>Delivery log</h1>
          <div className='muted'>One row per message, newest first.</div>
        </div>
      </div>
      <form className='panel' onSubmit={apply} data-testid='log-filters'>
        <div className='fields'>
          <div>
            <label htmlFor='f-user'>User</label>
            <input id='f-user' value={form.user ?? ''} onChange={set('user')} placeholder='user id' />
          </div>
          <div>
            <label htmlFor='f-device'>Device</label>
            <input id='f-device' value={form.device ?? ''} onChange={set('device')} placeholder='device id' />
          </div>
          <div>
            <label htmlFor='f-status'>Status</label>
            <select id='f-status' value={form.status ?? ''} onChange={set('status')}>
              <option value=''>any</option>
              {STATUSES.map(s => <option key={s} value={s}>{s}</option>)}
            </select>
          </div>
          <div>
            <label htmlFor='f-text'>Title contains</label>
            <input id='f-text' value={form.text ?? ''} onChange={set('text')} />
          </div>
          <div>
            <label htmlFor='f-since'>From</label>
            <input
              id='f-since' type='datetime-local' onChange={set('since')}
              value={toLocal(form.since) || (form.since ?? '')}
            />
          </div>
          <div>
            <label htmlFor='f-until'>Until</label>
            <input
              id='f-until' type='datetime-local' onChange={set('until')}
              value={toLocal(form.until) || (form.until ?? '')}
            />
          </div>
          <div className='field-wide'>
            <label htmlFor='f-id'>Message id</label>
            <input
              id='f-id' className='mono' value={form.messageId ?? ''} onChange={set('messageId')}
              placeholder='00000000-0000-0000-0000-000000000000'
            />
          </div>
        </div>
        <div className='actions'>
          <button className='primary' type='submit'>Apply filters</button>
          {filtered && <button type='button' onClick={() => navigate('/admin/log')}>Clear</button>}
        </div>
      </form>
      <ErrorBox error={error} />
      <div className='panel'>
        {rows === undefined
          ? <div className='muted'>Loading…</div>
          : rows.length === 0
            ? (
              <Empty title={filtered ? 'No message matches these filters' : 'No messages yet'}>{emptyHint}</Empty>
              )
            : (
              <div className='rows' data-testid='log-rows'>
                <div className='row head log-row'>
                  <span>Sent</span><span>Message</span><span>Target</span>
                  <span>Delivered</span><span>Devices</span><span>Slowest</span>
                </div>
                {rows.map(r => (
                  <Link
                    key={r.id} to={`/admin/messages/${r.id}`} className='row log-row'
                    data-testid='log-row' data-id={r.id}
                  >
                    <span><Time at={r.acceptedAt} /></span>
                    <span className='cell-title'>
                      <span data-testid='log-title'>{r.title ?? <span className='muted'>(no title)</span>}</span>
                      {r.priority === 'high' && <> <Badge kind='high'>high</Badge></>}
                      {r.revokedAt && <> <Badge kind='revoked'>revoked</Badge></>}
                    </span>
                    <span className='ellipsis'><Target t={r.target} /></span>
                    <span>
                      <strong>{r.delivered}</strong> <span className='muted'>of {r.recipients}</span>
                      <div className='progress'>
                        <span style={{ width: `${r.recipients ? (100 * r.delivered / r.recipients) : 0}%` }} />
                      </div>
                    </span>
                    <span><StatusCounts counts={r.counts} /></span>
                    <span>
                      {r.slowest
                        ? <span title={`device ${r.slowest.deviceId}`}><Ms ms={r.slowest.ms} /></span>
                        : <span className='muted'>—</span>}
                    </span>
                  </Link>
                ))}
              </div>
              )}
        <div className='pager'>
          <button type='button' onClick={newer} disabled={cursor === undefined} data-testid='newer'>← Newer</button>
          <span className='muted small'>
            {tookMs !== undefined && `${rows?.length ?? 0} messages · ${Math.round(tookMs)} ms`}
          </span>
          <button type='button' onClick={older} disabled={!next} data-testid='older'>Older →</button>
        </div>
      </div>
    </>
  )
}
