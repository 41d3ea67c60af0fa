import { useState, type FormEvent } from 'react'
import { api } from '../api'
import { ErrorBox } from '../ui'

export function Login ({ onIn }: { onIn: (csrfToken: string) => void }) {
  const [password, setPassword] = useState('')
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<unknown>()
  const submit = async (e: FormEvent): Promise<void> => {
    e.preventDefault()
    setBusy(true)
    setError(undefined)
    try {
      const s = await api<{ csrfToken: string }>('POST', '/login', { user: 'admin', password })
      onIn(s.csrfToken)
    } catch (err) {
      setError(err)
      setPassword('')
    } finally {
      setBusy(false)
    }
  }
  return (
    <main className='login'>
      <div className='brand'><img src='/web/favicon.svg' alt='' width={28} height={28} /> Herald admin</div>
      <form className='panel' onSubmit={e => { void submit(e) }}>
        <div className='stack'>
          <div>
            <label htmlFor='user'>User</label>
            <input id='user' name='username' value='admin' readOnly autoComplete='username' />
          </div>
          <div>
            <label htmlFor='password'>Password</label>
            <input
              id='password' name='password' type='password' autoFocus autoComplete='current-password'
              value={password} onChange={e => setPassword(e.target.value)}
            />
          </div>
        </div>
        <div className='actions'>
          <button className='primary' type='submit' disabled={busy || password === ''}>Log in</button>
        </div>
        <ErrorBox error={error} />
        <p className='muted small'>
          The password is <code>ADMIN_PASSWORD</code>, or the one printed on the server's first start.
        </p>
      </form>
    </main>
  )
}
