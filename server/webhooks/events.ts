import type { WebhookEventType } from '../wire.js'

/** Every event type an endpoint can ask for, in the order the docs list them (wire.ts WebhookEventType). */
export const WEBHOOK_EVENT_TYPES: readonly WebhookEventType[] = [
  'message.delivered', 'message.displayed', 'message.opened', 'message.dismissed',
  'message.expired', 'message.replaced', 'message.revoked',
  'device.online', 'device.offline'
]
