import { useState, type FormEvent } from 'react'
import {
  api, ApiError, WEBHOOK_EVENTS, WEBHOOK_EVENT_TYPES, type NewWebhookEndpoint, type WebhookEndpoint,
  type WebhookEndpointList, type WebhookEventType
} from '../api'
import { Link } from '../router'
import { Badge, CopyButton, Empty, ErrorBox, Time, usePolled } from '../ui'

/** Statuses change while you look: a receiver starts failing, an endpoint is disabled. */
export const WEBHOOKS_REFRESH_MS = 2_000

/** enabled, failing since X (retrying), or disabled since X. */
export function EndpointStatus ({ endpoint: w }: { endpoint: WebhookEndpoint }) {
  if (w.disabledAt) {
    return (
      <span data-testid='webhook-status' title={w.disabledReason ?? undefined}>
        <Badge kind='revoked'>disabled</Badge> <span className='muted small'><Time at={w.disabledAt} /></span>
      </span>
    )
  }
  if (w.failingSince) {
    return (
      <span data-testid='webhook-status' title='its POSTs fail and are retried with backoff'>
        <Badge kind='sent'>failing</Badge> <span className='muted small'>since <Time at={w.failingSince} /></span>
      </span>
    )
  }
  return <span data-testid='webhook-status'><Badge kind='delivered'>enabled</Badge></span>
}

export function eventsText (events: WebhookEventType[]): string {
  return events.length === WEBHOOK_EVENT_TYPES.length ? `all ${events.length} events` : events.join(', ')
}

export function WebhooksPage () {
  const list = usePolled(() => api<WebhookEndpointList>('GET', '/webhooks'), 'list', WEBHOOKS_REFRESH_MS)
  const webhooks = list.value?.webhooks
  return (
    <>
      <div className='pagehead'>
        <div>
          <h1>Webhooks</h1>
          <div className='muted'>
            Herald POSTs delivery events to your backend in batches, signed per Standard Webhooks. A failing endpoint
            is retried with backoff for 24 h, then disabled; its events are kept for 3 days.
          </div>
        </div>
      </div>
      <RegisterForm onCreated={() => list.reload()} />
      <ErrorBox error={list.error} />
      <div className='panel'>
        {webhooks === undefined
          ? <div className='muted'>Loading…</div>
          : webhooks.length === 0
            ? <Empty title='No endpoints'>Register one above to receive delivery events.</Empty>
            : (
              <div className='rows' data-testid='webhooks'>
                <div className='row head webhook-row'>
                  <span>Endpoint</span><span>Status</span><span>Events</span><span>Pending</span>
                  <span>Failed</span><span>Last delivered</span>
                </div>
                {webhooks.map(w => (
                  <Link
                    key={w.id} to={`/admin/webhooks/${w.id}`} className='row webhook-row' data-testid='webhook-row'
                    data-webhook={w.id}
                  >
                    <span className='ellipsis' title={w.url}>
                      <strong className='mono'>{w.url}</strong>
                      {w.description && (
                        <span className='muted small' style={{ display: 'block' }}>{w.description}</span>
                      )}
                    </span>
                    <EndpointStatus endpoint={w} />
                    <span className='ellipsis small' title={w.events.join(', ')}>{eventsText(w.events)}</span>
                    <span>{w.pendingDeliveries > 0 ? w.pendingDeliveries : <span className='muted'>0</span>}</span>
                    <span>
                      {w.failedDeliveries > 0
                        ? <Badge kind='revoked'>{w.failedDeliveries}</Badge>
                        : <span className='muted'>0</span>}
                    </span>
                    <span><Time at={w.lastDeliveredAt} empty='never' /></span>
                    {w.disabledReason && (
                      <span className='webhook-reason small' data-testid='webhook-reason'>
                        {w.disabledReason}. Open it to replay its failed deliveries and enable it.
                      </span>
                    )}
                  </Link>
                ))}
              </div>
              )}
      </div>
    </>
  )
}

const FIELDS = ['url', 'events', 'description'] as const
type Field = typeof FIELDS[number]

/** A 400's field errors by the form field they belong to (`events[0]` is the events field); undefined if any other. */
function fieldErrors (error: unknown): Partial<Record<Field, string>> | undefined {
  if (!(error instanceof ApiError) || error.fields.length === 0) return undefined
  const byField: Partial<Record<Field, string>> = {}
  for (const { field, message } of error.fields) {
    const name = field.replace(/[[.].*$/, '') as Field
    if (!FIELDS.includes(name)) return undefined
    byField[name] = byField[name] ? `${byField[name]}; ${message}` : message
  }
  return byField
}

function FieldError ({ id, message }: { id: string, message: string | undefined }) {
  if (!message) return null
  return <div className='field-error' id={id} data-testid={id}>{message}</div>
}

function RegisterForm ({ onCreated }: { onCreated: () => void }) {
  const [url, setUrl] = useState('')
  const [description, setDescription] = useState('')
  const [events, setEvents] = useState<WebhookEventType[]>([])
  const [created, setCreated] = useState<NewWebhookEndpoint>()
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<unknown>()
  const fields = fieldErrors(error)

  const toggle = (type: WebhookEventType, on: boolean): void =>
    setEvents(now => WEBHOOK_EVENT_TYPES.filter(t => t === type ? on : now.includes(t)))
  const all = events.length === WEBHOOK_EVENT_TYPES.length

  const submit = async (e: FormEvent): Promise<void> => {
    e.preventDefault()
    setError(undefined)
    setCreated(undefined)
    setBusy(true)
    try {
      setCreated(await api<NewWebhookEndpoint>('POST', '/webhooks', {
        url: url.trim(), events, description: description.trim() === '' ? undefined : description.trim()
      }))
      setUrl('')
      setDescription('')
      setEvents([])
      onCreated()
    } catch (err) {
      setError(err)
    } finally {
      setBusy(false)
    }
  }

  return (
    <form className='panel' onSubmit={e => { void submit(e) }} data-testid='webhook-form'>
      <h2>Register an endpoint</h2>
      <div className='fields'>
        <div className='field-wide'>
          <label htmlFor='w-url'>URL</label>
          <input
            id='w-url' type='url' value={url} onChange={e => setUrl(e.target.value)} required maxLength={2048}
            placeholder='https://backend.example.com/herald-events' aria-invalid={fields?.url !== undefined}
            aria-describedby={fields?.url ? 'w-url-error' : undefined}
          />
          <FieldError id='w-url-error' message={fields?.url} />
        </div>
        <div className='field-wide'>
          <label htmlFor='w-description'>Description</label>
          <input
            id='w-description' value={description} onChange={e => setDescription(e.target.value)} maxLength={200}
            placeholder='optional, e.g. "orders service"' aria-invalid={fields?.description !== undefined}
            aria-describedby={fields?.description ? 'w-description-error' : undefined}
          />
          <FieldError id='w-description-error' message={fields?.description} />
        </div>
        <fieldset className='field-wide checks' aria-describedby={fields?.events ? 'w-events-error' : undefined}>
          <legend>Events</legend>
          <label className='check check-all'>
            <input
              type='checkbox' checked={all} onChange={e => setEvents(e.target.checked ? [...WEBHOOK_EVENT_TYPES] : [])}
              ref={el => { if (el) el.indeterminate = events.length > 0 && !all }}
            />
            Select all
          </label>
          {WEBHOOK_EVENT_TYPES.map(type => (
            <label key={type} className='check'>
              <input type='checkbox' checked={events.includes(type)} onChange={e => toggle(type, e.target.checked)} />
              <span><span className='mono'>{type}</span> <span className='muted'>{WEBHOOK_EVENTS[type]}</span></span>
            </label>
          ))}
          <FieldError id='w-events-error' message={fields?.events} />
        </fieldset>
      </div>
      <div className='actions'>
        <button className='primary' type='submit' disabled={busy || url.trim() === '' || events.length === 0}>
          Register endpoint
        </button>
        {events.length === 0 && <span className='muted small'>Choose at least one event.</span>}
      </div>
      {created && (
        <div className='notice' style={{ marginTop: 12 }} data-testid='new-webhook'>
          <strong>Endpoint {created.url} registered.</strong> Copy its signing secret now: it is shown only this once
          and cannot be read again. Your receiver verifies each POST's <code>webhook-signature</code> with it.
          <div className='secret'>
            <code data-testid='webhook-secret'>{created.secret}</code><CopyButton text={created.secret} />
          </div>
        </div>
      )}
      {!fields && <ErrorBox error={error} />}
    </form>
  )
}
