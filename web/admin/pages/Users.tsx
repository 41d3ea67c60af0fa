import { useEffect, useState, type FormEvent } from 'react'
import { api, type Device, type UserSummary } from '../api'
import { Link, navigate } from '../router'
import { Badge, Empty, ErrorBox, Time } from '../ui'

const DEVICES_REFRESH_MS = 3_000

export function UsersPage ({ user }: { user: string | undefined }) {
  const [prefix, setPrefix] = useState(user ?? '')
  const [hits, setHits] = useState<UserSummary[]>()
  const [devices, setDevices] = useState<Device[]>()
  const [error, setError] = useState<unknown>()
  const [version, setVersion] = useState(0)

  // users whose id starts with what was typed (most recently seen first)
  useEffect(() => {
    const t = setTimeout(() => {
      api<UserSummary[]>('GET', `/users?prefix=${encodeURIComponent(prefix)}`).then(setHits, setError)
    }, 150)
    return () => clearTimeout(t)
  }, [prefix])

  useEffect(() => { setDevices(undefined) }, [user])
  // refreshed every few seconds: "online" and "pending" change while you look
  useEffect(() => {
    if (user === undefined) return
    let stale = false
    const load = (): void => {
      api<Device[]>('GET', `/users/${encodeURIComponent(user)}/devices`)
        .then(d => { if (!stale) setDevices(d) }, setError)
    }
    load()
    const t = setInterval(load, DEVICES_REFRESH_MS)
    return () => { stale = true; clearInterval(t) }
  }, [user, version])

  const end = async (d: Device): Promise<void> => {
    const question = `End the session of ${d.deviceId}? It is disconnected, its queue (${d.pending}) is revoked, ` +
      'and it is no longer a target until it connects again.'
    if (!confirm(question)) return
    try {
      await api('DELETE', `/devices/${encodeURIComponent(d.deviceId)}`)
      setVersion(v => v + 1)
    } catch (err) {
      setError(err)
    }
  }
  const open = (e: FormEvent): void => {
    e.preventDefault()
    if (prefix.trim() !== '') navigate(`/admin/users/${encodeURIComponent(prefix.trim())}`)
  }

  return (
    <>
      <div className='pagehead'>
        <div>
          <h1>Users &amp; devices</h1>
          <div className='muted'>Find a user, see their devices, end a device's session.</div>
        </div>
      </div>
      <form className='panel' onSubmit={open}>
        <label htmlFor='u-search'>User id</label>
        <div className='secret' style={{ marginTop: 0 }}>
          <input
            id='u-search' value={prefix} onChange={e => setPrefix(e.target.value)} autoComplete='off'
            placeholder='start typing a user id'
          />
          <button className='primary' type='submit'>Open</button>
        </div>
      </form>
      <ErrorBox error={error} />
      {user !== undefined && (
        <div className='panel' data-testid='devices'>
          <h2>Devices of {user}</h2>
          {devices === undefined
            ? <div className='muted'>Loading…</div>
            : devices.length === 0
              ? (
                <Empty title='No devices'>
                  This user has no device that ever connected. A device connects to <code>/mqtt</code> with a token
                  for this user.
                </Empty>
                )
              : (
                <div className='rows'>
                  <div className='row head device-row'>
                    <span>Device</span><span>Status</span><span>Connected since</span>
                    <span>Last seen</span><span>Pending</span><span />
                  </div>
                  {devices.map(d => (
                    <div key={d.deviceId} className='row device-row' data-testid='device-row'>
                      <span className='mono ellipsis' title={d.deviceId}>
                        {d.deviceId}
                        {!d.persistent && <span className='muted small'> (clean)</span>}
                      </span>
                      <span>
                        {d.online ? <Badge kind='online'>online</Badge> : <Badge kind='offline'>offline</Badge>}
                      </span>
                      <span>{d.online ? <Time at={d.connectedAt} /> : <span className='muted'>—</span>}</span>
                      <span><Time at={d.lastSeenAt} /></span>
                      <span>
                        {d.pending > 0 ? <Badge kind='queued'>{d.pending}</Badge> : <span className='muted'>0</span>}
                      </span>
                      <span>
                        <button
                          className='danger' type='button' disabled={!d.online && !d.persistent}
                          onClick={() => { void end(d) }}
                        >
                          End session
                        </button>
                      </span>
                    </div>
                  ))}
                </div>
                )}
          <p className='muted small'>
            <Link to={`/admin/log?user=${encodeURIComponent(user)}`}>Messages to {user} →</Link>
          </p>
        </div>
      )}
      <div className='panel'>
        <h2>{prefix ? `Users starting with “${prefix}”` : 'Recently seen users'}</h2>
        {hits === undefined
          ? <div className='muted'>Loading…</div>
          : hits.length === 0
            ? <Empty title='No user found'>Users appear once one of their devices connects over MQTT.</Empty>
            : (
              <div className='rows'>
                <div className='row head user-row'>
                  <span>User</span><span>Devices</span><span>Online</span><span>Last seen</span>
                </div>
                {hits.map(h => (
                  <Link key={h.userId} to={`/admin/users/${encodeURIComponent(h.userId)}`} className='row user-row'>
                    <span className='ellipsis'><strong>{h.userId}</strong></span>
                    <span>{h.devices}</span>
                    <span>
                      {h.online > 0
                        ? <Badge kind='online'>{h.online} online</Badge>
                        : <Badge kind='offline'>offline</Badge>}
                    </span>
                    <span><Time at={h.lastSeenAt} /></span>
                  </Link>
                ))}
              </div>
              )}
      </div>
    </>
  )
}
