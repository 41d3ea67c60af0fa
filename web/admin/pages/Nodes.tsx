import { useEffect, useState } from 'react'
import { api, type NodeList, type NodeSummary } from '../api'
import { exactTime, relativeTime } from '../../shared/time'
import { Badge, Empty, ErrorBox } from '../ui'

const NODES_REFRESH_MS = 3_000
// Nodes beat every 5 s (server/delivery/maintenance.ts) and are marked gone after 30 s of
// silence; one that missed a few beats is shown late meanwhile.
const LATE_AFTER_MS = 15_000
const LEADER_TITLE = "it runs the cluster's chores: expiry, marking dead nodes gone, clean-ups"

/** A time relative to the database's clock when the list was read ("12 s ago"), exact on hover. */
function Ago ({ at, now }: { at: string | null, now: number }) {
  if (!at) return <span className='muted'>—</span>
  return <time dateTime={at} title={exactTime(at)}>{relativeTime(at, now)}</time>
}

function Status ({ node, now }: { node: NodeSummary, now: number }) {
  const silentMs = now - Date.parse(node.heartbeatAt)
  return (
    <span className='badges'>
      {node.goneAt
        ? <Badge kind='offline'>gone</Badge>
        : silentMs > LATE_AFTER_MS
          ? <Badge kind='sent' title='its heartbeat is late: it may have died'>late</Badge>
          : <Badge kind='online'>running</Badge>}
      {node.leader && <Badge kind='queued' title={LEADER_TITLE}>leader</Badge>}
    </span>
  )
}

export function NodesPage () {
  const [list, setList] = useState<NodeList>()
  const [error, setError] = useState<unknown>()

  // refreshed every few seconds: heartbeats and connections change while you look
  useEffect(() => {
    let stale = false
    const load = (): void => {
      api<NodeList>('GET', '/nodes').then(l => { if (!stale) { setList(l); setError(undefined) } }, setError)
    }
    load()
    const t = setInterval(load, NODES_REFRESH_MS)
    return () => { stale = true; clearInterval(t) }
  }, [])

  const running = list?.nodes.filter(n => !n.goneAt).length ?? 0
  const now = list ? Date.parse(list.at) : Date.now()
  return (
    <>
      <div className='pagehead'>
        <div>
          <h1>Nodes</h1>
          <div className='muted'>
            The Herald processes on this database. Each holds its own device connections; one of them, the leader,
            runs the cluster's chores. Gone ones are kept for a day.
          </div>
        </div>
      </div>
      <ErrorBox error={error} />
      <div className='panel'>
        {list === undefined
          ? <div className='muted'>Loading…</div>
          : list.nodes.length === 0
            ? <Empty title='No nodes'>A Herald process shows up here once it has started.</Empty>
            : (
              <>
                <h2>{running} running{list.nodes.length > running && `, ${list.nodes.length - running} gone`}</h2>
                <div className='rows' data-testid='nodes'>
                  <div className='row head node-row'>
                    <span>Node</span><span>Status</span><span>Version</span><span>Host : pid</span>
                    <span>Connections</span><span>Started</span><span>Last heartbeat</span><span>Gone</span>
                  </div>
                  {list.nodes.map(n => (
                    <div key={n.id} className='row node-row' data-testid='node-row' data-node={n.id}>
                      <span className='ellipsis' title={n.id}>
                        <span className='mono'>{n.id}</span>
                        {n.id === list.servedBy && (
                          <span className='muted small' style={{ display: 'block' }} data-testid='served-by'>
                            served this page
                          </span>
                        )}
                      </span>
                      <Status node={n} now={now} />
                      <span className='mono'>{n.version ?? <span className='muted'>—</span>}</span>
                      <span className='mono ellipsis' title={`${n.hostname ?? '?'}:${n.pid ?? '?'}`}>
                        {n.hostname ?? '?'}:{n.pid ?? '?'}
                      </span>
                      <span className={n.goneAt ? 'muted' : undefined}>{n.connections.toLocaleString()}</span>
                      <span><Ago at={n.startedAt} now={now} /></span>
                      <span><Ago at={n.heartbeatAt} now={now} /></span>
                      <span><Ago at={n.goneAt} now={now} /></span>
                    </div>
                  ))}
                </div>
              </>
              )}
      </div>
      <p className='muted small'>
        Connections are as of each node's last heartbeat (every 5 s); a gone node's are those it held when it
        was last heard from.
      </p>
    </>
  )
}
