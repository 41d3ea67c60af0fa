import { useState } from 'react'
import {
  api, ApiError, WEBHOOK_EVENTS, type WebhookDelivery, type WebhookDeliveryList, type WebhookEndpoint
} from '../api'
import { Link, navigate } from '../router'
import { Badge, Empty, ErrorBox, Time, usePolled } from '../ui'
import { EndpointStatus, WEBHOOKS_REFRESH_MS } from './Webhooks'

const STATUS_RANK: Record<WebhookDelivery['status'], number> = { failed: 0, pending: 1, delivered: 2 }

interface Loaded { endpoint: WebhookEndpoint, deliveries: WebhookDelivery[] }

/**
 * The endpoint and its batches, failed first: the server lists the newest 100 of a status, so
 * the failed ones are read on their own, lest newer deliveries push them out.
 */
async function read (id: string): Promise<Loaded> {
  const [endpoint, failed, recent] = await Promise.all([
    api<WebhookEndpoint>('GET', `/webhooks/${id}`),
    api<WebhookDeliveryList>('GET', `/webhooks/${id}/deliveries?status=failed`),
    api<WebhookDeliveryList>('GET', `/webhooks/${id}/deliveries`)
  ])
  const seen = new Set(failed.deliveries.map(d => d.id))
  const deliveries = [...failed.deliveries, ...recent.deliveries.filter(d => !seen.has(d.id))]
    .sort((a, b) => STATUS_RANK[a.status] - STATUS_RANK[b.status]) // stable: newest first within a status
  return { endpoint, deliveries }
}

function DeliveryStatus ({ d }: { d: WebhookDelivery }) {
  if (d.status === 'failed') return <Badge kind='revoked'>failed</Badge>
  if (d.status === 'delivered') return <Badge kind='delivered'>delivered</Badge>
  return d.attempts > 0 ? <Badge kind='sent'>retrying</Badge> : <Badge kind='queued'>pending</Badge>
}

/** The last answer: its HTTP status, or why there was none. */
function LastAnswer ({ d }: { d: WebhookDelivery }) {
  if (d.attempts === 0) return <span className='muted'>—</span>
  if (d.lastStatus !== null) return <span className='mono' data-testid='last-status'>HTTP {d.lastStatus}</span>
  return <span className='ellipsis' title={d.lastError ?? undefined}>{d.lastError ?? 'no answer'}</span>
}

export function WebhookPage ({ id }: { id: string }) {
  const loaded = usePolled(() => read(id), id, WEBHOOKS_REFRESH_MS)
  const [error, setError] = useState<unknown>()
  const [busy, setBusy] = useState(false)

  if (loaded.error instanceof ApiError && loaded.error.status === 404) {
    return (
      <Empty title='No such endpoint'>
        It may have been deleted. <Link to='/admin/webhooks'>Back to the webhooks</Link>.
      </Empty>
    )
  }
  if (!loaded.value) return loaded.error ? <ErrorBox error={loaded.error} /> : <div className='muted'>Loading…</div>
  const { endpoint: w, deliveries } = loaded.value

  const act = async (action: () => Promise<unknown>): Promise<void> => {
    setError(undefined)
    setBusy(true)
    try {
      await action()
      loaded.reload()
    } catch (err) {
      setError(err)
    } finally {
      setBusy(false)
    }
  }
  const enable = (): Promise<void> => act(() => api('POST', `/webhooks/${id}/enable`))
  const replay = (d: WebhookDelivery): Promise<void> =>
    act(() => api('POST', `/webhooks/${id}/deliveries/${encodeURIComponent(d.id)}/replay`))
  const remove = async (): Promise<void> => {
    const waiting = w.pendingDeliveries + w.failedDeliveries
    if (!confirm(`Delete the endpoint ${w.url}? Nothing more is sent to it` +
      (waiting > 0 ? `, and its ${waiting} undelivered batch(es) are dropped.` : '.'))) return
    await act(async () => {
      await api('DELETE', `/webhooks/${id}`)
      navigate('/admin/webhooks')
    })
  }

  return (
    <>
      <div className='pagehead'>
        <div style={{ minWidth: 0 }}>
          <div className='small muted'><Link to='/admin/webhooks'>Webhooks</Link> / endpoint</div>
          <h1 className='ellipsis' title={w.url} data-testid='webhook-url'>{w.url}</h1>
          {w.description && <div className='muted'>{w.description}</div>}
        </div>
        <div className='actions'>
          {w.disabledAt && (
            <button
              className='primary' type='button' disabled={busy} onClick={() => { void enable() }}
              title='send again: the events kept while it was disabled follow'
            >
              Enable
            </button>
          )}
          <button className='danger' type='button' disabled={busy} onClick={() => { void remove() }}>Delete</button>
        </div>
      </div>
      <ErrorBox error={error ?? loaded.error} />
      {w.disabledAt && (
        <div className='error' data-testid='disabled-reason'>
          Disabled <Time at={w.disabledAt} />: {w.disabledReason ?? 'failing for the whole retry window'}. Nothing is
          sent to it; its events are kept for 3 days. Fix the receiver, replay the failed deliveries and enable it.
        </div>
      )}
      <div className='panel'>
        <div className='meta'>
          <div><span>Status</span><EndpointStatus endpoint={w} /></div>
          <div><span>Registered</span><Time at={w.createdAt} /></div>
          <div><span>Last delivered</span><Time at={w.lastDeliveredAt} empty='never' /></div>
          <div><span>Pending</span><span>{w.pendingDeliveries}</span></div>
          <div><span>Failed</span><span>{w.failedDeliveries}</span></div>
          <div style={{ gridColumn: '1 / -1' }}>
            <span>Events</span>
            <span className='badges'>
              {w.events.map(t => <span key={t} className='badge mono' title={WEBHOOK_EVENTS[t]}>{t}</span>)}
            </span>
          </div>
        </div>
      </div>
      <div className='panel'>
        <h2>Deliveries</h2>
        {deliveries.length === 0
          ? <Empty title='Nothing sent yet'>Each POST of a batch of events shows up here, with its attempts.</Empty>
          : (
            <div className='rows' data-testid='deliveries'>
              <div className='row head delivery-row'>
                <span>Webhook id</span><span>Status</span><span>Events</span><span>Attempts</span>
                <span>Last answer</span><span>Last attempt</span><span>Next attempt</span><span />
              </div>
              {deliveries.map(d => (
                <div
                  key={d.id} className='row delivery-row' data-testid='delivery-row' data-delivery={d.id}
                  data-status={d.status}
                >
                  <span className='mono ellipsis' title={d.id}>{d.id}</span>
                  <span><DeliveryStatus d={d} /></span>
                  <span>{d.events}</span>
                  <span>{d.attempts}</span>
                  <LastAnswer d={d} />
                  <span><Time at={d.lastAttemptAt} /></span>
                  <span><Time at={d.nextAttemptAt} /></span>
                  <span>
                    {(d.status === 'failed' || (d.status === 'pending' && d.attempts > 0)) && (
                      <button
                        type='button' disabled={busy} onClick={() => { void replay(d) }}
                        title='send this batch again now, with the same webhook-id and body'
                      >
                        {d.status === 'failed' ? 'Replay' : 'Retry now'}
                      </button>
                    )}
                  </span>
                  {d.status !== 'delivered' && d.lastResponse && (
                    <pre className='answer' data-testid='last-response'>{d.lastResponse}</pre>
                  )}
                </div>
              ))}
            </div>
            )}
        <p className='muted small'>
          Failed first, then newest first. A replay sends the batch again with the same <code>webhook-id</code>, so a
          receiver that already has it can tell.
        </p>
      </div>
    </>
  )
}
