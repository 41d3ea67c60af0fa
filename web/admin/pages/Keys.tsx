import { useEffect, useState, type FormEvent } from 'react'
import { api, type ApiKey, type NewApiKey } from '../api'
import { Badge, CopyButton, Empty, ErrorBox, Time } from '../ui'

export function KeysPage () {
  const [keys, setKeys] = useState<ApiKey[]>()
  const [name, setName] = useState('')
  const [created, setCreated] = useState<NewApiKey>()
  const [error, setError] = useState<unknown>()
  const load = (): void => { api<ApiKey[]>('GET', '/api-keys').then(setKeys, setError) }
  useEffect(load, [])

  const create = async (e: FormEvent): Promise<void> => {
    e.preventDefault()
    setError(undefined)
    try {
      setCreated(await api<NewApiKey>('POST', '/api-keys', { name: name.trim() }))
      setName('')
      load()
    } catch (err) {
      setError(err)
    }
  }
  const revoke = async (k: ApiKey): Promise<void> => {
    if (!confirm(`Revoke the key “${k.name}”? Backends using it get 401 within seconds.`)) return
    try {
      await api('DELETE', `/api-keys/${k.id}`)
      load()
    } catch (err) {
      setError(err)
    }
  }

  return (
    <>
      <div className='pagehead'>
        <div>
          <h1>API keys</h1>
          <div className='muted'>
            Backends send with <code>Authorization: Bearer &lt;key&gt;</code>. Keys are stored hashed.
          </div>
        </div>
      </div>
      <form className='panel' onSubmit={e => { void create(e) }}>
        <label htmlFor='k-name'>New key for</label>
        <div className='secret' style={{ marginTop: 0 }}>
          <input
            id='k-name' value={name} onChange={e => setName(e.target.value)} maxLength={100}
            placeholder='who uses it, e.g. "orders service"'
          />
          <button className='primary' type='submit' disabled={name.trim() === ''}>Create key</button>
        </div>
        {created && (
          <div className='notice' style={{ marginTop: 12 }} data-testid='new-key'>
            <strong>Key “{created.name}” created.</strong> Copy it now: it is shown only this once.
            <div className='secret'><code>{created.key}</code><CopyButton text={created.key} /></div>
          </div>
        )}
        <ErrorBox error={error} />
      </form>
      <div className='panel'>
        {keys === undefined
          ? <div className='muted'>Loading…</div>
          : keys.length === 0
            ? <Empty title='No API keys'>Create one above; backends need it to send messages.</Empty>
            : (
              <div className='rows' data-testid='keys'>
                <div className='row head key-row'>
                  <span>Name</span><span>Key starts</span><span>Created</span>
                  <span>Last used</span><span>Status</span><span />
                </div>
                {keys.map(k => (
                  <div key={k.id} className='row key-row' data-testid='key-row'>
                    <span className='ellipsis'><strong>{k.name}</strong></span>
                    <span className='mono'>{k.prefix}…</span>
                    <span><Time at={k.createdAt} /></span>
                    <span><Time at={k.lastUsedAt} empty='never' /></span>
                    <span>
                      {k.revokedAt ? <Badge kind='revoked'>revoked</Badge> : <Badge kind='delivered'>active</Badge>}
                    </span>
                    <span>
                      {!k.revokedAt && (
                        <button className='danger' type='button' onClick={() => { void revoke(k) }}>Revoke</button>
                      )}
                    </span>
                  </div>
                ))}
              </div>
              )}
      </div>
    </>
  )
}
