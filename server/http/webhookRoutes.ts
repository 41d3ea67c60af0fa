import { Router, type RequestHandler } from 'express'
import type { WebhookService } from '../services/webhooks.js'
import { parseWebhookRequest } from './requests.js'
import { Checker, QueryReader, requireUuid } from './validate.js'

const DELIVERY_STATUSES = ['pending', 'delivered', 'failed'] as const

/**
 * The webhook routes, mounted by the REST API at /v1/webhooks (admin credentials) and by the
 * admin UI at /admin/api/webhooks (its session): the same handlers behind each surface's guards.
 */
export function webhookRoutes (webhooks: WebhookService, guards: { read: RequestHandler[], write: RequestHandler[] }):
Router {
  const { read, write } = guards
  const router = Router()
  const endpointId = (value: unknown): string => requireUuid(String(value), 'webhook endpoint')

  router.post('/', ...write, async (req, res) => {
    // the only time the signing secret is shown
    res.status(201).json(await webhooks.create(parseWebhookRequest(req.body)))
  })
  router.get('/', ...read, async (_req, res) => {
    res.json(await webhooks.list())
  })
  router.get('/:id', ...read, async (req, res) => {
    res.json(await webhooks.get(endpointId(req.params.id)))
  })
  router.delete('/:id', ...write, async (req, res) => {
    await webhooks.delete(endpointId(req.params.id))
    res.status(204).end()
  })
  router.post('/:id/enable', ...write, async (req, res) => {
    res.json(await webhooks.enable(endpointId(req.params.id)))
  })
  router.get('/:id/deliveries', ...read, async (req, res) => {
    const check = new Checker()
    const status = new QueryReader(check, req.query, ['status']).oneOf('status', DELIVERY_STATUSES)
    check.done()
    res.json(await webhooks.deliveries(endpointId(req.params.id), status))
  })
  router.post('/:id/deliveries/:deliveryId/replay', ...write, async (req, res) => {
    await webhooks.replay(endpointId(req.params.id), String(req.params.deliveryId))
    res.status(202).json({ id: String(req.params.deliveryId), status: 'pending' })
  })
  return router
}
