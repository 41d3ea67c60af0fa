import { useState, type FormEvent } from 'react'
import { api, type SendResult } from '../api'
import { navigate } from '../router'
import { ErrorBox } from '../ui'

/** A test push: the same validation and delivery path as POST /v1/messages; then its detail page. */
export function SendPage () {
  const [kind, setKind] = useState<'user' | 'topic'>('user')
  const [to, setTo] = useState('')
  const [title, setTitle] = useState('Hello from Herald')
  const [body, setBody] = useState('')
  const [data, setData] = useState('')
  const [ttl, setTtl] = useState('3600')
  const [priority, setPriority] = useState<'normal' | 'high'>('normal')
  const [collapseKey, setCollapseKey] = useState('')
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<unknown>()

  const submit = async (e: FormEvent): Promise<void> => {
    e.preventDefault()
    setError(undefined)
    let parsed: unknown
    if (data.trim() !== '') {
      try { parsed = JSON.parse(data) } catch (err) {
        setError(new Error(`Data is not valid JSON: ${(err as Error).message}`))
        return
      }
    }
    setBusy(true)
    try {
      const sent = await api<SendResult>('POST', '/messages', {
        to: kind === 'user' ? { user: to.trim() } : { topic: to.trim() },
        title: title === '' ? undefined : title,
        body: body === '' ? undefined : body,
        data: parsed,
        ttl: Number(ttl),
        priority,
        collapseKey: collapseKey === '' ? undefined : collapseKey
      })
      navigate(`/admin/messages/${sent.id}`)
    } catch (err) {
      setError(err)
    } finally {
      setBusy(false)
    }
  }

  return (
    <>
      <div className='pagehead'>
        <div>
          <h1>Send a test push</h1>
          <div className='muted'>
            Goes through the same path as <code>POST /v1/messages</code>; you land on its page and watch it get
            delivered.
          </div>
        </div>
      </div>
      <form className='panel' onSubmit={e => { void submit(e) }} data-testid='send-form'>
        <div className='fields'>
          <div>
            <label htmlFor='s-kind'>Send to</label>
            <select id='s-kind' value={kind} onChange={e => setKind(e.target.value as 'user' | 'topic')}>
              <option value='user'>a user</option>
              <option value='topic'>a topic</option>
            </select>
          </div>
          <div>
            <label htmlFor='s-to'>{kind === 'user' ? 'User id' : 'Topic name'}</label>
            <input
              id='s-to' value={to} onChange={e => setTo(e.target.value)} required
              placeholder={kind === 'user' ? 'alice' : 'news'}
            />
          </div>
          <div className='field-wide'>
            <label htmlFor='s-title'>Title</label>
            <input id='s-title' value={title} onChange={e => setTitle(e.target.value)} />
          </div>
          <div className='field-wide'>
            <label htmlFor='s-body'>Body</label>
            <input id='s-body' value={body} onChange={e => setBody(e.target.value)} />
          </div>
          <div className='field-wide'>
            <label htmlFor='s-data'>Data (JSON object, optional)</label>
            <textarea id='s-data' value={data} onChange={e => setData(e.target.value)} placeholder='{"orderId": 42}' />
          </div>
          <div>
            <label htmlFor='s-ttl'>TTL (seconds)</label>
            <input id='s-ttl' type='number' min={0} max={2419200} value={ttl} onChange={e => setTtl(e.target.value)} />
          </div>
          <div>
            <label htmlFor='s-priority'>Priority</label>
            <select id='s-priority' value={priority} onChange={e => setPriority(e.target.value as 'normal' | 'high')}>
              <option value='normal'>normal</option>
              <option value='high'>high</option>
            </select>
          </div>
          <div>
            <label htmlFor='s-collapse'>Collapse key</label>
            <input
              id='s-collapse' value={collapseKey} onChange={e => setCollapseKey(e.target.value)} placeholder='optional'
            />
          </div>
        </div>
        <div className='actions'>
          <button className='primary' type='submit' disabled={busy || to.trim() === ''}>Send</button>
        </div>
        <ErrorBox error={error} />
      </form>
    </>
  )
}
