// The live channel: one EventSource per page on /admin/api/events. The server pushes the
// overview every few seconds and, for the message being watched, its detail whenever one of
// its deliveries changed. EventSource reconnects by itself after a network error.
import { useEffect, useState } from 'react'
import type { AdminMessageDetail, Overview } from './api'

export interface Live {
  connected: boolean
  overview: Overview | undefined
  /** the watched message's latest detail (undefined until the first push) */
  message: AdminMessageDetail | undefined
}

export function useLive (enabled: boolean, watch: string | undefined, onLogout: () => void): Live {
  const [connected, setConnected] = useState(false)
  const [overview, setOverview] = useState<Overview>()
  const [message, setMessage] = useState<AdminMessageDetail>()
  useEffect(() => {
    setMessage(undefined)
    if (!enabled) return
    const source = new EventSource(`/admin/api/events${watch ? `?watch=${encodeURIComponent(watch)}` : ''}`)
    source.onopen = () => setConnected(true)
    source.onerror = () => setConnected(false)
    source.addEventListener('overview', e => setOverview(JSON.parse((e as MessageEvent<string>).data)))
    source.addEventListener('message', e => setMessage(JSON.parse((e as MessageEvent<string>).data)))
    source.addEventListener('logout', () => {
      source.close()
      setConnected(false)
      onLogout()
    })
    return () => {
      source.close()
      setConnected(false)
    }
  }, [enabled, watch])
  return { connected, overview, message }
}
