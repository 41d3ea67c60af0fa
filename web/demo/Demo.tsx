// The demo device page: a form around device.ts, a list of pushes, and system notifications.
import { useEffect, useRef, useState, type FormEvent } from 'react'
import { connect, stableClientId, type Device, type DeviceStatus, type Push, type ReceiptEvent } from './device'
import { exactTime, relativeTime } from '../shared/time'

interface Shown { push: Push, receivedAt: string, receipts: ReceiptEvent[] }

const SEEN_KEY = 'herald-demo-seen'
const SEEN_KEPT = 500

/** Ids already shown in this browser: delivery is at-least-once, so a push may come twice. */
function seenIds (): Set<string> {
  try { return new Set(JSON.parse(localStorage.getItem(SEEN_KEY) ?? '[]') as string[]) } catch { return new Set() }
}
function rememberSeen (ids: Set<string>): void {
  localStorage.setItem(SEEN_KEY, JSON.stringify([...ids].slice(-SEEN_KEPT)))
}

export function Demo () {
  const [userId, setUserId] = useState(() => localStorage.getItem('herald-demo-user') ?? '')
  const [token, setToken] = useState('')
  const [status, setStatus] = useState<DeviceStatus | 'idle'>('idle')
  const [detail, setDetail] = useState<string>()
  const [pushes, setPushes] = useState<Shown[]>([])
  const [permission, setPermission] = useState(
    typeof Notification === 'undefined' ? 'unsupported' : Notification.permission
  )
  const device = useRef<Device | undefined>(undefined)
  const seen = useRef(seenIds())

  useEffect(() => () => device.current?.close(), [])
  // keep "2 min ago" true
  const [, setTick] = useState(0)
  useEffect(() => {
    const t = setInterval(() => setTick(n => n + 1), 15_000)
    return () => clearInterval(t)
  }, [])

  const receipt = (id: string, event: ReceiptEvent): void => {
    device.current?.receipt(id, event)
    setPushes(list => list.map(s =>
      s.push.id === id && !s.receipts.includes(event) ? { ...s, receipts: [...s.receipts, event] } : s))
  }

  const onPush = (push: Push): void => {
    if (seen.current.has(push.id)) return // a redelivery: already shown
    seen.current.add(push.id)
    rememberSeen(seen.current)
    setPushes(list => [{ push, receivedAt: new Date().toISOString(), receipts: [] }, ...list])
    // shown in the list (and as a system notification when allowed): report it displayed
    if (typeof Notification !== 'undefined' && Notification.permission === 'granted') {
      try {
        const n = new Notification(push.title ?? 'Herald', { body: push.body, tag: push.collapseKey ?? push.id })
        n.onclick = () => { window.focus(); receipt(push.id, 'opened') }
      } catch {
        // some browsers (Android Chrome) only allow notifications from a service worker
      }
    }
    receipt(push.id, 'displayed')
  }

  const start = (e: FormEvent): void => {
    e.preventDefault()
    device.current?.close()
    localStorage.setItem('herald-demo-user', userId)
    setDetail(undefined)
    device.current = connect({
      userId,
      token: token.trim(),
      clientId: stableClientId(userId),
      onPush,
      onStatus: (s, d) => { setStatus(s); setDetail(d) }
    })
  }
  const stop = (): void => {
    device.current?.close()
    device.current = undefined
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
              This page is a device: it connects over MQTT on WebSocket, like your web app would.
              Its code is <code>web/demo/device.ts</code>.
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
            {running && (
              <p className='muted small'>
                Client id <code>{stableClientId(userId)}</code>, persistent session,
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
                    onClick={() => receipt(push.id, 'opened')} title='click: send an "opened" receipt'
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
