// Baseline: what Herald would be without durability. A bare aedes 1.2 with its in-memory
// store, over ws 8's createWebSocketStream at /mqtt, with the same WebSocket settings as
// server/broker/broker.ts and no hooks (everyone may connect, subscribe and publish).
//
// `node --import tsx bench/baselines/aedes.ts <port>`: prints {"ready":true,"port":…} once listening.
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Aedes } from 'aedes'
import { WebSocketServer, createWebSocketStream } from 'ws'

const port = Number(process.argv[2] ?? 0)

const broker = await Aedes.createBroker({ maxClientsIdLength: 128 })
;(broker as unknown as NodeJS.EventEmitter).on('error', (err: Error) => {
  process.stderr.write(`aedes error: ${err.message}\n`)
})

const http = createServer((_req, res) => { res.writeHead(404).end() })
const wss = new WebSocketServer({
  server: http,
  path: '/mqtt',
  maxPayload: 64 * 1024,
  handleProtocols: protocols => protocols.has('mqtt') ? 'mqtt' : protocols.has('mqttv3.1') ? 'mqttv3.1' : false
})
wss.on('connection', (ws, req) => {
  const stream = createWebSocketStream(ws)
  stream.on('error', () => {})
  broker.handle(stream, req)
})
http.listen(port, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ ready: true, port: (http.address() as AddressInfo).port }) + '\n')
})

const stop = (): void => {
  for (const ws of wss.clients) ws.terminate()
  wss.close()
  http.close()
  broker.close(() => process.exit(0))
  setTimeout(() => process.exit(0), 2_000).unref()
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
