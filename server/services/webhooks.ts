import type { Pool } from '../db/pool.js'
import { ProblemError } from '../errors.js'
import type {
  NewWebhookEndpoint, WebhookDelivery, WebhookEndpoint, WebhookEndpointList, WebhookDeliveryList, WebhookEventType
} from '../wire.js'
import {
  deleteWebhookEndpoint, enableWebhookEndpoint, getWebhookEndpoint, insertWebhookEndpoint, listWebhookDeliveries,
  listWebhookEndpoints, replayWebhookDelivery
} from '../store/webhooks.js'
import { generateWebhookSecret } from '../webhooks/signature.js'

/** A page of an endpoint's deliveries: enough to see what failed and why. */
export const WEBHOOK_DELIVERIES_LIMIT = 100

/**
 * Webhook endpoints: registering, listing, removing and re-enabling them, and the batches sent to
 * them (listed, replayed). The REST API (/v1/webhooks) and the admin UI call the same functions;
 * webhooks/sender.ts does the sending.
 */
export class WebhookService {
  constructor (private readonly pool: Pool) {}

  /** The signing secret is in the result and nowhere else: it is shown once. */
  async create (input: { url: string, events: WebhookEventType[], description: string | null }):
  Promise<NewWebhookEndpoint> {
    const secret = generateWebhookSecret()
    const endpoint = await insertWebhookEndpoint(this.pool, { ...input, secret })
    return { ...endpoint, secret }
  }

  async list (): Promise<WebhookEndpointList> {
    return { webhooks: await listWebhookEndpoints(this.pool) }
  }

  async get (id: string): Promise<WebhookEndpoint> {
    return orNotFound(await getWebhookEndpoint(this.pool, id), id)
  }

  async delete (id: string): Promise<void> {
    if (!await deleteWebhookEndpoint(this.pool, id)) notFound(id)
  }

  /** Sending resumes where it stopped: events recorded while it was disabled follow. */
  async enable (id: string): Promise<WebhookEndpoint> {
    return orNotFound(await enableWebhookEndpoint(this.pool, id), id)
  }

  async deliveries (id: string, status?: WebhookDelivery['status']): Promise<WebhookDeliveryList> {
    const deliveries = await listWebhookDeliveries(this.pool, id, { status, limit: WEBHOOK_DELIVERIES_LIMIT })
    return { deliveries: orNotFound(deliveries, id) }
  }

  /** Queues a failed (or waiting) batch to be sent now, with its webhook-id and body unchanged. */
  async replay (id: string, deliveryId: string): Promise<void> {
    if (await replayWebhookDelivery(this.pool, id, deliveryId)) return
    await this.get(id)
    throw new ProblemError('not-found',
      `webhook endpoint ${id} has no delivery ${JSON.stringify(deliveryId.slice(0, 64))} that is pending or failed`)
  }
}

function notFound (id: string): never {
  throw new ProblemError('not-found', `no webhook endpoint with id ${id}`)
}

function orNotFound<T> (value: T | undefined, id: string): T {
  if (value === undefined) notFound(id)
  return value
}
