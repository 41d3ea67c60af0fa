import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Logger } from '../log.js'
import type { AuthDeps } from '../http/auth.js'
import { MAX_BODY_BYTES } from '../http/body.js'
import {
  authenticate, readBody, requireAccepting, requireJson, runSteps, type Exchange, type Step
} from '../http/pipeline.js'
import { idempotencyOf, MAX_BATCH_BODY_BYTES, parseBatchBody, parseSendBody } from '../http/requests.js'
import { sendError, sendJson } from '../http/respond.js'
import type { MessageService } from '../services/messages.js'

export interface SendRouteDeps {
  log: Logger
  auth: AuthDeps
  messages: MessageService
  /** false while shutting down: sends are refused with 503 */
  accepting: () => boolean
}

type Route = 'single' | 'batch'

/**
 * `POST /v1/messages` and `POST /v1/messages/batch`, served straight from Node's HTTP server:
 * the answer to anything else is false, and express takes the request.
 *
 * Why not express: it was most of the cost of a send. The same POST with the same JSON body
 * parser costs 62–70 µs of CPU on bare Node and 170–226 µs through express 5 (the request and
 * response objects it re-prototypes on every request, its router, res.json), measured in one
 * run on the bench machine; a send as a whole cost ~340 µs. The steps before the route are the
 * same functions the express routes run (http/pipeline.ts).
 */
export function sendRoutes (deps: SendRouteDeps): (req: IncomingMessage, res: ServerResponse) => boolean {
  const before = [authenticate(deps.auth), requireJson, requireAccepting(deps.accepting)]
  const steps: Record<Route, Step[]> = {
    single: [...before, readBody(MAX_BODY_BYTES)],
    batch: [...before, readBody(MAX_BATCH_BODY_BYTES)]
  }

  const handle = async (route: Route, exchange: Exchange): Promise<void> => {
    await runSteps(steps[route], exchange)
    const { req, res, body, apiKey } = exchange
    // validated before it is hashed: validation bounds how deep the body nests
    const idempotency = (): ReturnType<typeof idempotencyOf> => idempotencyOf(req.headers['idempotency-key'], body)
    if (route === 'single') {
      const input = parseSendBody(body)
      const { response } = await deps.messages.send(input, apiKey!.id, idempotency())
      res.setHeader('Location', `/v1/messages/${response.id}`)
      sendJson(res, 202, response)
    } else {
      const inputs = parseBatchBody(body)
      const { response } = await deps.messages.sendBatch(inputs, apiKey!.id, idempotency())
      sendJson(res, 202, response)
    }
  }

  return (req, res) => {
    if (req.method !== 'POST') return false
    const route = routeOf(req.url ?? '')
    if (route === undefined) return false
    handle(route, { req, res }).catch(err => sendError(deps.log, req, res, err))
    return true
  }
}

/** Matches as express' default routing does: case-insensitive, an optional trailing slash, any query. */
function routeOf (url: string): Route | undefined {
  const query = url.indexOf('?')
  const path = (query < 0 ? url : url.slice(0, query)).toLowerCase()
  if (path === '/v1/messages' || path === '/v1/messages/') return 'single'
  if (path === '/v1/messages/batch' || path === '/v1/messages/batch/') return 'batch'
  return undefined
}
