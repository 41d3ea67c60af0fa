import { metricSample } from './helpers/metrics.js'
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { startTestHerald, connectDevice, ADMIN_PASSWORD, type TestHerald } from './helpers/herald.js'

const METRICS_TOKEN = 'metrics-token-for-tests-0123'
let h: TestHerald

before(async () => { h = await startTestHerald({ env: { METRICS_TOKEN, METRICS_PORT: '0' } }) })
after(async () => { await h.stop() })

async function scrape (url: string, authorization?: string): Promise<{ status: number, text: string }> {
  const res = await fetch(url, { headers: authorization ? { authorization } : {} })
  return { status: res.status, text: await res.text() }
}

const sample = metricSample

test('every sample names the process it comes from (node), so several processes can be scraped apart', async () => {
  const text = (await scrape(`${h.url}/metrics`, `Bearer ${METRICS_TOKEN}`)).text
  const samples = text.split('\n').filter(l => l !== '' && !l.startsWith('#'))
  assert.ok(samples.length > 20)
  for (const line of samples) assert.ok(line.includes(`node="${h.herald.nodeId}"`), line)
})

test('/metrics needs the metrics token or the admin credentials', async () => {
  assert.equal((await scrape(`${h.url}/metrics`)).status, 401)
  assert.equal((await scrape(`${h.url}/metrics`, 'Bearer wrong-token-wrong-token')).status, 401)
  assert.equal((await scrape(`${h.url}/metrics`, `Bearer ${METRICS_TOKEN}`)).status, 200)
  const basic = 'Basic ' + Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64')
  assert.equal((await scrape(`${h.url}/metrics`, basic)).status, 200)
})

test('a delivery moves the counters, the latency histogram and the connection gauge', async () => {
  const device = await connectDevice(h.wsUrl, { clientId: 'metrics-phone', password: await h.token('mia') })
  const before = (await scrape(`${h.url}/metrics`, `Bearer ${METRICS_TOKEN}`)).text
  assert.equal(sample(before, 'herald_connected_devices'), 1)
  const sent = await h.api('/v1/messages', { body: { to: { user: 'mia' }, title: 'counted' } })
  assert.equal(sent.status, 202)
  await device.waitFor(1)
  // the delivered counter moves on the PUBACK, which follows the message's arrival
  let after = ''
  for (let i = 0; i < 100; i++) {
    after = (await scrape(`${h.url}/metrics`, `Bearer ${METRICS_TOKEN}`)).text
    if (sample(after, 'herald_deliveries_total{status="delivered"}') === 1) break
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  assert.equal(
    sample(after, 'herald_messages_accepted_total'), (sample(before, 'herald_messages_accepted_total') ?? 0) + 1)
  assert.equal(sample(after, 'herald_deliveries_queued_total'), 1)
  assert.equal(sample(after, 'herald_deliveries_total{status="delivered"}'), 1)
  assert.equal(sample(after, 'herald_delivery_latency_seconds_count'), 1)
  assert.ok((sample(after, 'herald_db_batch_size_count{kind="accept"}') ?? 0) >= 1)
  assert.match(after, /herald_process_nodejs_eventloop_lag_seconds/)
  assert.match(after, /herald_db_pool_connections\{state="total",node="[^"]+"\}/)
  await device.close()
})

test('refused device connections are counted by reason', async () => {
  await connectDevice(h.wsUrl, { clientId: 'metrics-bad', password: 'not-a-jwt' }).then(d => d.close(), () => {})
  const text = (await scrape(`${h.url}/metrics`, `Bearer ${METRICS_TOKEN}`)).text
  assert.equal(sample(text, 'herald_device_auth_failures_total{reason="malformed"}'), 1)
})

test('METRICS_PORT serves /metrics without credentials, and nothing else', async () => {
  const port = h.herald.metricsPort
  assert.ok(port !== undefined && port !== 0)
  const res = await scrape(`http://127.0.0.1:${port}/metrics`)
  assert.equal(res.status, 200)
  assert.match(res.text, /herald_messages_accepted_total/)
  assert.equal((await scrape(`http://127.0.0.1:${port}/v1/messages`)).status, 404)
})
