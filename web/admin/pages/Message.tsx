import { useEffect, useState } from 'react'
import { api, ApiError, REASONS, type AdminMessageDetail, type DeviceTimeline } from '../api'
import { duration, exactTime } from '../../shared/time'
import { Link } from '../router'
import { Badge, Empty, ErrorBox, Time } from '../ui'
import { StatusCounts } from './Log'

type Step = { name: string, at: string | null, kind: string }

/**
 * queued → sent → delivered → displayed → opened, or ending in expired / replaced / revoked.
 * Always in this order: an app may send its "displayed" receipt before the PUBACK reaches us.
 */
function steps (d: DeviceTimeline): Step[] {
  const out: Step[] = [{ name: 'queued', at: d.queuedAt, kind: 'queued' }]
  if (d.sentAt) out.push({ name: 'sent', at: d.sentAt, kind: 'sent' })
  if (d.deliveredAt) out.push({ name: 'delivered', at: d.deliveredAt, kind: 'delivered' })
  if (d.displayedAt) out.push({ name: 'displayed', at: d.displayedAt, kind: 'displayed' })
  if (d.openedAt) out.push({ name: 'opened', at: d.openedAt, kind: 'opened' })
  if (d.dismissedAt) out.push({ name: 'dismissed', at: d.dismissedAt, kind: 'dismissed' })
  // an ended delivery has no time of its own: expiry is at the message's expiry, the others unknown
  if (d.status === 'expired') out.push({ name: 'expired', at: d.expiresAt, kind: 'expired' })
  if (d.status === 'replaced' || d.status === 'revoked') out.push({ name: d.status, at: null, kind: d.status })
  return out
}

function TimelineOfDevice ({ d }: { d: DeviceTimeline }) {
  const s = steps(d)
  return (
    <div className='device-timeline' data-testid='timeline' data-device={d.deviceId}>
      <div>
        <div className='mono ellipsis' title={d.deviceId}>{d.deviceId}</div>
        <div className='small muted'>
          user <Link to={`/admin/users/${encodeURIComponent(d.userId)}`}>{d.userId}</Link>
        </div>
      </div>
      <div className='timeline'>
        {s.map((step, i) => {
          const prev = s[i - 1]
          const gap = prev?.at && step.at ? Date.parse(step.at) - Date.parse(prev.at) : undefined
          const overtaken = gap !== undefined && gap < 0
            ? `${-gap} ms before the previous step: the receipt overtook the PUBACK`
            : undefined
          return (
            <span key={step.name} style={{ display: 'contents' }}>
              {i > 0 && (
                <span className='gap' title={overtaken}>
                  {gap !== undefined ? (gap < 0 ? '≈0 ms' : duration(gap)) : ''}
                </span>
              )}
              <span className='step' data-step={step.name}>
                <Badge kind={step.kind}>{step.name}</Badge>
                <span className='when'>
                  {step.at ? <span title={exactTime(step.at)}>{new Date(step.at).toLocaleTimeString()}</span> : '—'}
                </span>
              </span>
            </span>
          )
        })}
      </div>
      {d.reason && (
        <div className='small muted reason' data-testid='reason'>
          {REASONS[d.reason] ?? d.reason}
          {d.replacedBy && (
            <>
              {' by '}
              <Link to={`/admin/messages/${d.replacedBy}`}>
                <span className='mono'>{d.replacedBy.slice(0, 8)}</span>
              </Link>
            </>
          )}
        </div>
      )}
    </div>
  )
}

export function MessagePage ({ id, live }: { id: string, live: AdminMessageDetail | undefined }) {
  const [loaded, setLoaded] = useState<AdminMessageDetail>()
  const [error, setError] = useState<unknown>()
  const [revoking, setRevoking] = useState(false)
  useEffect(() => {
    setLoaded(undefined)
    setError(undefined)
    api<AdminMessageDetail>('GET', `/messages/${id}`).then(setLoaded, setError)
  }, [id])
  // the live channel pushes a fresh copy whenever a delivery of this message changes
  const m = live?.id === id ? live : loaded

  if (error instanceof ApiError && error.status === 404) {
    return (
      <Empty title='No such message'>
        It may have been deleted, or the id is wrong. <Link to='/admin/log'>Open the delivery log</Link>.
      </Empty>
    )
  }
  if (!m) return error ? <ErrorBox error={error} /> : <div className='muted'>Loading…</div>

  const undelivered = m.counts.queued + m.counts.sent
  const revoke = async (): Promise<void> => {
    if (!confirm(`Revoke this message on the ${undelivered} device(s) that have not received it?`)) return
    setRevoking(true)
    try {
      await api('DELETE', `/messages/${id}`)
      setLoaded(await api<AdminMessageDetail>('GET', `/messages/${id}`))
    } catch (err) {
      setError(err)
    } finally {
      setRevoking(false)
    }
  }
  const target = 'user' in m.target
    ? `user ${m.target.user}`
    : 'topic' in m.target ? `topic ${m.target.topic}` : `${m.target.users.length} users`
  return (
    <>
      <div className='pagehead'>
        <div style={{ minWidth: 0 }}>
          <div className='small muted'><Link to='/admin/log'>Delivery log</Link> / message</div>
          <h1 data-testid='message-title'>{m.title ?? <span className='muted'>(no title)</span>}</h1>
          <div className='badges'>
            <StatusCounts counts={m.counts} />
            {m.revokedAt && <Badge kind='revoked'>revoked <Time at={m.revokedAt} /></Badge>}
          </div>
        </div>
        <div className='actions'>
          <button
            className='danger' type='button' data-testid='revoke'
            disabled={undelivered === 0 || revoking} onClick={() => { void revoke() }}
            title={
              undelivered === 0 ? 'every device has it, or it ended' : 'revoke on devices that have not received it'
            }
          >
            Revoke{undelivered > 0 ? ` on ${undelivered} device${undelivered > 1 ? 's' : ''}` : ''}
          </button>
        </div>
      </div>
      <ErrorBox error={error} />
      <div className='grid2'>
        <div className='panel'>
          <h2>Payload</h2>
          <div className='stack'>
            <div>
              <label>Title</label>
              <div>{m.title ?? <span className='muted'>—</span>}</div>
            </div>
            <div>
              <label>Body</label>
              <div style={{ whiteSpace: 'pre-wrap' }}>{m.body ?? <span className='muted'>—</span>}</div>
            </div>
            <div>
              <label>Data</label>
              {m.data
                ? <pre data-testid='message-data'>{JSON.stringify(m.data, null, 2)}</pre>
                : <span className='muted'>—</span>}
            </div>
          </div>
        </div>
        <div className='panel'>
          <h2>Message</h2>
          <div className='meta'>
            <div><span>Id</span><span className='mono small'>{m.id}</span></div>
            <div>
              <span>Sent by</span>
              <span data-testid='sender'>
                {m.sentFromAdminUi ? <em>admin UI</em> : m.sender}
                {m.senderKeyRevoked && <span className='muted small'> (key revoked)</span>}
              </span>
            </div>
            <div><span>Target</span><span>{target}</span></div>
            <div><span>Accepted</span><Time at={m.acceptedAt} /></div>
            <div><span>Expires</span><Time at={m.expiresAt} /></div>
            <div><span>TTL</span><span>{m.ttl === 0 ? '0 (online devices only)' : duration(m.ttl * 1000)}</span></div>
            <div><span>Priority</span><span>{m.priority}</span></div>
            <div><span>Collapse key</span><span>{m.collapseKey ?? <span className='muted'>—</span>}</span></div>
            <div><span>Devices</span><span>{m.recipients}</span></div>
          </div>
        </div>
      </div>
      <div className='panel'>
        <h2>Per device</h2>
        {m.deliveries.length === 0
          ? (
            <Empty title='No device was a target'>
              The user had no persistent session and no device online when it was accepted. Connect a device
              (the <a href='/demo'>demo device</a> will do) and send again.
            </Empty>
            )
          : <div data-testid='timelines'>{m.deliveries.map(d => <TimelineOfDevice key={d.deviceId} d={d} />)}</div>}
        {m.total > m.deliveries.length && (
          <p className='muted small'>Showing {m.deliveries.length} of {m.total} devices (undelivered first).</p>
        )}
      </div>
    </>
  )
}
