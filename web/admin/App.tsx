import { useEffect, useState } from 'react'
import { api, onUnauthorized, setCsrfToken } from './api'
import { useLive } from './live'
import { BASE, Link, navigate, useLocation } from './router'
import { Login } from './pages/Login'
import { OverviewPage } from './pages/Overview'
import { LogPage } from './pages/Log'
import { MessagePage } from './pages/Message'
import { SendPage } from './pages/Send'
import { UsersPage } from './pages/Users'
import { KeysPage } from './pages/Keys'
import { NodesPage } from './pages/Nodes'
import { WebhooksPage } from './pages/Webhooks'
import { WebhookPage } from './pages/Webhook'
import { Empty } from './ui'

const NAV: Array<[string, string]> = [
  [BASE, 'Overview'],
  [`${BASE}/log`, 'Delivery log'],
  [`${BASE}/send`, 'Send test push'],
  [`${BASE}/users`, 'Users & devices'],
  [`${BASE}/keys`, 'API keys'],
  [`${BASE}/webhooks`, 'Webhooks'],
  [`${BASE}/nodes`, 'Nodes']
]

type Auth = 'checking' | 'out' | 'in'

export function App () {
  const [auth, setAuth] = useState<Auth>('checking')
  const { path, search } = useLocation()

  useEffect(() => {
    api<{ csrfToken: string }>('GET', '/session')
      .then(s => { setCsrfToken(s.csrfToken); setAuth('in') })
      .catch(() => setAuth('out'))
    return onUnauthorized(() => { setCsrfToken(undefined); setAuth('out') })
  }, [])

  const messageId = /^\/admin\/messages\/([0-9a-f-]{36})$/i.exec(path)?.[1]
  const webhookId = /^\/admin\/webhooks\/([0-9a-f-]{36})$/i.exec(path)?.[1]
  const live = useLive(auth === 'in', messageId, () => setAuth('out'))

  if (auth === 'checking') return null
  if (auth === 'out') return <Login onIn={token => { setCsrfToken(token); setAuth('in') }} />

  const logout = async (): Promise<void> => {
    await api('POST', '/logout').catch(() => {})
    setCsrfToken(undefined)
    setAuth('out')
    navigate(BASE, true)
  }

  const usersPrefix = `${BASE}/users/`
  // /admin/users/<id>: the users page with that user's devices
  const shownUser = path.startsWith(usersPrefix) ? decodeURIComponent(path.slice(usersPrefix.length)) : undefined
  let page
  if (path === BASE) page = <OverviewPage overview={live.overview} />
  else if (path === `${BASE}/log`) page = <LogPage search={search} />
  else if (messageId) page = <MessagePage id={messageId} live={live.message} />
  else if (path === `${BASE}/send`) page = <SendPage />
  else if (path === `${BASE}/users` || shownUser !== undefined) page = <UsersPage user={shownUser} />
  else if (path === `${BASE}/keys`) page = <KeysPage />
  else if (path === `${BASE}/nodes`) page = <NodesPage />
  else if (path === `${BASE}/webhooks`) page = <WebhooksPage />
  else if (webhookId) page = <WebhookPage id={webhookId} />
  else page = <Empty title='No such page'><Link to={BASE}>Back to the overview</Link></Empty>

  // a message's page belongs to the delivery log
  const active = (to: string): boolean =>
    to === BASE ? path === BASE : path.startsWith(to) || (to === `${BASE}/log` && Boolean(messageId))
  return (
    <>
      <header className='topbar'>
        <Link to={BASE} className='brand'><img src='/web/favicon.svg' alt='' /><span>Herald</span></Link>
        <nav className='nav'>
          {NAV.map(([to, label]) => (
            <Link key={to} to={to} className={active(to) ? 'active' : undefined}>{label}</Link>
          ))}
        </nav>
        <div className='right'>
          <span
            className={`dot ${live.connected ? 'live' : 'down'}`} data-testid='live-dot'
            title={live.connected ? 'live updates on' : 'live updates disconnected, retrying'}
          />
          <button type='button' onClick={() => { void logout() }}>Log out</button>
        </div>
      </header>
      <main className='main'>{page}</main>
    </>
  )
}
