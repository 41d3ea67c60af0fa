// The demo device page: a form around the device SDK (@herald-push/client, sdk/js), a list of
// pushes, and system notifications. The SDK dedupes by id, renews nothing here (the token is the
// one pasted or fetched: when it expires the client stops with token-refused), and keeps receipts
// until the server has them.
import { useEffect, useRef, useState, type FormEvent } from 'react'
import {
  createHeraldClient, type ConnectionState, type HeraldClient, type HeraldMessage, type ReceiptEvent
} from '../../sdk/js/src/index.js'
import { exactTime, relativeTime } from '../shared/time'

interface Shown { push: HeraldMessage, receivedAt: string, receipts: ReceiptEvent[] }

/** The MQTT endpoint of the server that served this page: ws:// on http, wss:// on https. */
const heraldUrl = (): string => `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/mqtt`

export function Demo () {
  const [userId, setUserId] = useState(() => localStorage.getItem('herald-demo-user') ?? '')
  const [token, setToken] = useState('')
  const [status, setStatus] = useState<ConnectionState | 'idle'>('idle')
  const [detail, setDetail] = useState<string>()
  const [deviceId, setDeviceId] = useState<string>()
  const [pushes, setPushes] = useState<Shown[]>([])
  const [permission, setPermission] = useState(
    typeof Notification === 'undefined' ? 'unsupported' : Notification.permission
  )
  const client = useRef<HeraldClient | undefined>(undefined)

  useEffect(() => () => { void client.current?.close() }, [])
  // keep "2 min ago" true
  const [, setTick] = useState(0)
  useEffect(() => {
    const t = setInterval(() => setTick(n => n + 1), 15_000)
    return () => clearInterval(t)
  }, [])

  // a badge once the server recorded the receipt (the SDK keeps it until then, offline too)
  const recorded = (id: string, event: ReceiptEvent): void => {
    setPushes(list => list.map(s =>
      s.push.id === id && !s.receipts.includes(event) ? { ...s, receipts: [...s.receipts, event] } : s))
  }

  const onMessage = (push: HeraldMessage): void => {
    setPushes(list => [{ push, receivedAt: new Date().toISOString(), receipts: [] }, ...list])
    // shown in the list (and as a system notification when allowed): report it displayed
    if (typeof Notification !== 'undefined' && Notification.permission === 'granted') {
      try {
        const n = new Notification(push.title ?? 'Herald', { body: push.body, tag: push.collapseKey ?? push.id })
        n.onclick = () => { window.focus(); void push.opened() }
      } catch {
        // some browsers (Android Chrome) only allow notifications from a service worker
      }
    }
    void push.displayed()
  }

  const start = (e: FormEvent): void => {
    e.preventDefault()
    void client.current?.close()
    localStorage.setItem('herald-demo-user', userId)
    setDetail(undefined)
    const pasted = token.trim()
    // the SDK keeps the device id (per user) and the ids already shown in localStorage
    const c = createHeraldClient({ url: heraldUrl(), token: async () => pasted })
    // a client replaced or stopped here still says `closed` once it is: not this page's state any more
    const current = (): boolean => client.current === c
    c.on('state', state => {
      if (!current()) return
      setStatus(state)
      if (state === 'connected') {
        setDeviceId(c.deviceId)
        setDetail(undefined)
      }
    })
    c.on('error', err => { if (current()) setDetail(`${err.code}: ${err.message}`) })
    c.on('message', onMessage)
    c.on('receipt', ({ id, event }) => recorded(id, event))
    client.current = c
    setStatus(c.state)
  }
  const stop = (): void => {
    void client.current?.close()
    client.current = undefined
    setStatus('idle')
  }

  // "Get a token" works for a logged-in admin (the admin session cookie goes along)
  const getToken = async (): Promise<void> => {
    setDetail(undefined)
    const session = await fetch('/admin/api/session', { credentials: 'same-origin' })
    if (!session.ok) {
      setDetail('Getting a token here needs the admin session: log in at /admin in this browser, ' +
        'or paste a token from POST /v1/tokens.')
      return
    }
    const { csrfToken } = await session.json() as { csrfToken: string }
    const res = await fetch('/admin/api/tokens', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json', 'x-herald-csrf': csrfToken },
      body: JSON.stringify({ user: userId, ttl: 24 * 3600 })
    })
    const body = await res.json() as { token?: string, detail?: string }
    if (res.ok && body.token) setToken(body.token)
    else setDetail(body.detail ?? `token request failed (${res.status})`)
  }

  const askPermission = async (): Promise<void> => {
    setPermission(await Notification.requestPermission())
  }

  const running = status !== 'idle'
  const nothingYet = status === 'connected'
    ? (
      <>
        Send one to user <code>{userId}</code> from the <a href='/admin/send'>admin</a> or
        with <code>POST /v1/messages</code>.
      </>
      )
    : 'Connect first, then send a push to this user.'
  return (
    <>
      <header className='topbar'>
        <a className='brand' href='/demo'><img src='/web/favicon.svg' alt='' /><span>Herald</span></a>
        <nav className='nav'><a className='active' href='/demo'>Demo device</a><a href='/admin'>Admin</a></nav>
        <div className='right'>
          <span className={`dot ${status === 'connected' ? 'live' : running ? 'down' : ''}`} />
          <span data-testid='status'>{status === 'idle' ? 'not connected' : status}</span>
        </div>
      </header>
      <main className='main'>
        <div className='pagehead'>
          <div>
            <h1>Demo device</h1>
            <div className='muted'>
              This page is a device: it connects over MQTT on WebSocket, like your web app would,
              with the device SDK <code>@herald-push/client</code> (<code>sdk/js</code>).
            </div>
          </div>
        </div>
        <div className='grid2'>
          <form className='panel' onSubmit={start}>
            <div className='stack'>
              <div>
                <label htmlFor='d-user'>User id</label>
                <input
                  id='d-user' value={userId} onChange={e => setUserId(e.target.value)} disabled={running} required
                  placeholder='alice'
                />
              </div>
              <div>
                <label htmlFor='d-token'>Device token (JWT)</label>
                <textarea
                  id='d-token' value={token} onChange={e => setToken(e.target.value)} disabled={running} required
                  placeholder='from POST /v1/tokens {"user": "…"}' style={{ minHeight: 70 }}
                />
              </div>
            </div>
            <div className='actions'>
              {/* keyed: React must not turn the clicked Disconnect button into the submit button mid-click */}
              {!running
                ? <button key='connect' className='primary' type='submit' disabled={!userId || !token}>Connect</button>
                : <button key='disconnect' type='button' onClick={stop}>Disconnect</button>}
              <button type='button' onClick={() => { void getToken() }} disabled={running || !userId}>
                Get a token (admin)
              </button>
            </div>
            {detail && <div className='error' role='alert'>{detail}</div>}
            {running && deviceId && (
              <p className='muted small'>
                Device id <code data-testid='device-id'>{deviceId}</code>, persistent session,
                subscribed to <code>users/{userId}/inbox</code>.
              </p>
            )}
          </form>
          <div className='panel'>
            <h2>System notifications</h2>
            {permission === 'unsupported' && (
              <p className='muted'>This browser has no Notification API; pushes are listed below.</p>
            )}
            {permission === 'granted' && (
              <p>
                On: each new push also shows as a system notification. Clicking it sends an <code>opened</code> receipt.
              </p>
            )}
            {permission === 'denied' && (
              <p className='muted'>
                Blocked for this site. Allow notifications in the browser's site settings to see them.
              </p>
            )}
            {permission === 'default' && (
              <button type='button' onClick={() => { void askPermission() }}>Show pushes as notifications</button>
            )}
            <p className='muted small'>
              Every push shown sends a <code>displayed</code> receipt;
              clicking one in the list sends <code>opened</code>.
            </p>
          </div>
        </div>
        <div className='panel'>
          <h2>Pushes</h2>
          {pushes.length === 0
            ? <div className='empty'><strong>Nothing received yet</strong>{nothingYet}</div>
            : (
              <div data-testid='pushes'>
                {pushes.map(({ push, receivedAt, receipts }) => (
                  <div
                    key={push.id} className='push' data-testid='push' data-id={push.id}
                    onClick={() => { void push.opened() }} title='click: send an "opened" receipt'
                  >
                    <div className='title'>{push.title ?? '(no title)'}</div>
                    {push.body && <div>{push.body}</div>}
                    {push.data && <pre style={{ marginTop: 6 }}>{JSON.stringify(push.data, null, 2)}</pre>}
                    <div className='small muted' style={{ marginTop: 4 }}>
                      <span title={exactTime(receivedAt)}>{relativeTime(receivedAt)}</span>
                      {push.topic && <> · topic {push.topic}</>}
                      {receipts.map(r => <span key={r} className={`badge b-${r}`} style={{ marginLeft: 6 }}>{r}</span>)}
                    </div>
                  </div>
                ))}
              </div>
              )}
        </div>
      </main>
    </>
  )
}
