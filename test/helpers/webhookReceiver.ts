// A real HTTP receiver of Herald's webhooks, as a backend would run one: it verifies every POST
// with the `standardwebhooks` package (the Standard Webhooks reference library) and collects
// the events. How it answers is up to the test (`answer`), to play a receiver that is down,
// failing, slow or hostile.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Webhook } from 'standardwebhooks'

export interface ReceivedPost {
  headers: Record<string, string>
  body: string
  /** what the verifier said: true when the signature matched the secret */
  verified: boolean
  at: number
}

export interface ReceivedEvent {
  id: string
  type: string
  timestamp: string
  data: { messageId: string | null, deviceId: string, userId: string, reason: string | null, replacedBy: string | null }
  /** the webhook-id of the POST it came in */
  webhookId: string
}

/** Answers a POST; the default answers 204 once the body was read. */
export type Answer = (req: IncomingMessage, res: ServerResponse, body: string) => void

export interface WebhookReceiver {
  url: string
  /** every POST, in arrival order; a POST answered with a failure is here too */
  posts: ReceivedPost[]
  /** the events of the POSTs answered 2xx, in arrival order (a redelivered one is here twice) */
  events: ReceivedEvent[]
  /** set once the endpoint is created: the verifier needs it */
  secret: string | undefined
  answer: Answer
  /** resolves once `ok(events)` holds, checked when each POST arrives and when it is answered */
  until: (what: string, ok: (events: ReceivedEvent[]) => boolean, timeoutMs?: number) => Promise<ReceivedEvent[]>
  close: () => Promise<void>
}

export const answerOk: Answer = (_req, res) => { res.writeHead(204).end() }

export async function startWebhookReceiver (): Promise<WebhookReceiver> {
  const waiters = new Set<() => void>()
  const receiver: WebhookReceiver = {
    url: '',
    posts: [],
    events: [],
    secret: undefined,
    answer: answerOk,
    until: (what, ok, timeoutMs = 15_000) => new Promise((resolve, reject) => {
      const check = (): void => {
        if (!ok(receiver.events)) return
        clearTimeout(timer)
        waiters.delete(check)
        resolve(receiver.events.slice())
      }
      const timer = setTimeout(() => {
        waiters.delete(check)
        reject(new Error(`${what}: not within ${timeoutMs} ms; ${receiver.posts.length} POSTs, ` +
          `events: ${receiver.events.map(e => e.type).join(', ')}`))
      }, timeoutMs)
      waiters.add(check)
      check()
    }),
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>(resolve => server.close(() => resolve()))
    }
  }
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)]))
      let verified = false
      try {
        new Webhook(receiver.secret ?? 'whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=').verify(body, headers)
        verified = true
      } catch {}
      receiver.posts.push({ headers, body, verified, at: Date.now() })
      for (const check of [...waiters]) check()
      res.on('finish', () => {
        if (res.statusCode >= 200 && res.statusCode < 300 && verified) {
          const payload = JSON.parse(body) as { events: Array<Omit<ReceivedEvent, 'webhookId'>> }
          for (const e of payload.events) receiver.events.push({ ...e, webhookId: headers['webhook-id'] })
        }
        for (const check of [...waiters]) check()
      })
      receiver.answer(req, res, body)
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', () => resolve()))
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`
  return receiver
}
