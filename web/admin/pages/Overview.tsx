import type { ReactNode } from 'react'
import type { Overview } from '../api'
import { Link } from '../router'
import { Chart, Empty, Ms } from '../ui'

interface StatProps { label: string, value: ReactNode, sub?: ReactNode, testId?: string, compact?: boolean }

function Stat ({ label, value, sub, testId, compact = false }: StatProps) {
  return (
    <div className='stat' data-testid={testId}>
      <div className='label'>{label}</div>
      <div className={compact ? 'value compact' : 'value'}>{value}</div>
      {sub !== undefined && <div className='sub'>{sub}</div>}
    </div>
  )
}

export function OverviewPage ({ overview }: { overview: Overview | undefined }) {
  if (!overview) return <div className='muted'>Loading live figures…</div>
  const h = overview.lastHour
  const last = h.minutes.length - 1
  const acceptedHour = h.accepted.reduce((a, b) => a + b, 0)
  const deliveredHour = h.delivered.reduce((a, b) => a + b, 0)
  const { p50, p95, windowMinutes, samples } = overview.latency
  const latencyValue = <><Ms ms={p50} /> <span className='muted'>/</span> <Ms ms={p95} /></>
  const latencySub = `accept → PUBACK, last ${windowMinutes} min (${samples.toLocaleString()} deliveries)`
  const nodes = overview.nodesRunning === 1 ? '1 node' : `${overview.nodesRunning} nodes`
  return (
    <>
      <div className='pagehead'>
        <div>
          <h1>Overview</h1>
          <div className='muted'>Live: updates every few seconds.</div>
        </div>
      </div>
      <div className='stats'>
        <Stat
          testId='stat-online' label='Devices online' value={overview.devicesOnline.toLocaleString()}
          sub={<>connected right now to <Link to='/admin/nodes' data-testid='nodes-running'>{nodes}</Link></>}
        />
        <Stat
          testId='stat-accepted' label='Accepted / min' value={h.accepted[last].toLocaleString()}
          sub={`${acceptedHour.toLocaleString()} messages in the last hour`}
        />
        <Stat
          testId='stat-delivered' label='Delivered / min' value={h.delivered[last].toLocaleString()}
          sub={`${deliveredHour.toLocaleString()} device deliveries in the last hour`}
        />
        <Stat testId='stat-latency' compact label='Latency p50 / p95' value={latencyValue} sub={latencySub} />
        <Stat
          testId='stat-waiting' label='Waiting in queues' value={overview.waiting.toLocaleString()}
          sub='device deliveries not yet acknowledged'
        />
        <Stat
          testId='stat-expired' label='Expired, last day' value={overview.expiredLastDay.toLocaleString()}
          sub='TTL ran out before delivery'
        />
      </div>
      {acceptedHour === 0 && deliveredHour === 0
        ? (
          <div className='panel'>
            <Empty title='No traffic in the last hour'>
              Send a message with <code>POST /v1/messages</code>, or <Link to='/admin/send'>send a test push</Link> and
              watch it arrive on the <a href='/demo'>demo device</a>.
            </Empty>
          </div>
          )
        : (
          <div className='grid2'>
            <div className='panel'>
              <h2>Messages per minute, last hour</h2>
              <Chart
                label='accepted and delivered per minute' minutes={h.minutes} series={[
                  { label: 'accepted', values: h.accepted, color: '#4f46e5' },
                  { label: 'delivered', values: h.delivered, color: '#17b26a' }
                ]}
              />
            </div>
            <div className='panel'>
              <h2>Delivery latency, last hour</h2>
              <Chart
                label='delivery latency p50 and p95 per minute' unit='ms' minutes={h.minutes} series={[
                  { label: 'p50', values: h.p50, color: '#0ea5e9' },
                  { label: 'p95', values: h.p95, color: '#f79009' }
                ]}
              />
            </div>
          </div>
          )}
      <p className='muted small'>
        Latency counts from accept to the device's PUBACK, so a device that was offline adds the time it was away.
      </p>
    </>
  )
}
