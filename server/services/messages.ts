import { randomUUID } from 'node:crypto'
import type { Pool } from '../db/pool.js'
import { broadcastTopic } from '../ids.js'
import { ProblemError } from '../errors.js'
import type { Logger } from '../log.js'
import { devicePayload, MAX_PAYLOAD_BYTES, type SendInput } from '../delivery/message.js'
import type { AcceptOutcome, AcceptRequest, NewMessage } from '../store/accept.js'
import { revokeMessage } from '../store/deliveries.js'
import { getMessage, listDeliveries, type LogFilter } from '../store/messages.js'
import type { DeliveryLogRow, MessageDetail, SendResult } from '../wire.js'
import type { LogKey } from '../store/logOrder.js'
import type { Metrics } from '../metrics.js'
import { Acceptor } from '../delivery/acceptor.js'
import type { DeliveryEngine, DispatchItem } from '../delivery/engine.js'
import type { Actor } from './actor.js'

export interface Idempotency { key: string, requestHash: string }

/**
 * A committed send: the answer for the client (`{ id, recipients }`, or `{ messages: [...] }` for
 * a batch), and whether it is the stored answer to an earlier request with the same
 * Idempotency-Key rather than a new message.
 */
export interface SendOutcome<R> { response: R, replayed: boolean }

export interface MessageServiceDeps {
  pool: Pool
  /** this process (the accept signals the other processes holding target devices) */
  nodeId: string
  log: Logger
  engine: DeliveryEngine
  /** devices subscribed to a broadcast topic right now */
  topicSubscribers: (topic: string) => Promise<string[]>
  metrics?: Metrics
  /** tests lower it to reach it with a few devices */
  maxBatchTopicDeliveries?: number
}

/** Devices the topic messages of one batch may be queued for together (a single message has no such limit). */
export const MAX_BATCH_TOPIC_DELIVERIES = 100_000

/**
 * Sending, reading and revoking messages: the one door to delivery for the REST API and the
 * admin UI. A send resolves only after its message and every per-device queue row are committed.
 */
export class MessageService {
  readonly #acceptor: Acceptor
  private readonly pool: Pool
  private readonly engine: DeliveryEngine
  private readonly topicSubscribers: (topic: string) => Promise<string[]>
  private readonly metrics: Metrics | undefined
  private readonly maxBatchTopicDeliveries: number

  constructor (deps: MessageServiceDeps) {
    this.pool = deps.pool
    this.engine = deps.engine
    this.topicSubscribers = deps.topicSubscribers
    this.metrics = deps.metrics
    this.maxBatchTopicDeliveries = deps.maxBatchTopicDeliveries ?? MAX_BATCH_TOPIC_DELIVERIES
    this.#acceptor = new Acceptor(deps.pool, deps.nodeId, deps.log,
      (requests, outcomes) => this.#dispatchAccepted(requests, outcomes), deps.metrics)
  }

  /** One message, once it and its deliveries are committed: `{ id, recipients }`. */
  async send (input: SendInput, apiKeyId: string | null, idempotency?: Idempotency): Promise<SendOutcome<SendResult>> {
    const message = await this.newMessage(input, apiKeyId)
    return this.commit({ messages: [message], apiKeyId, idempotency, response: ([one]) => one })
  }

  /** Many messages in one request: all of them are committed together, or none. */
  async sendBatch (inputs: SendInput[], apiKeyId: string | null,
    idempotency?: Idempotency): Promise<SendOutcome<{ messages: SendResult[] }>> {
    const messages = await Promise.all(inputs.map((input, i) => this.newMessage(input, apiKeyId, `messages[${i}]`)))
    const topicDevices = messages.reduce((sum, m) => sum + (m.topicSubscribers?.length ?? 0), 0)
    const limit = this.maxBatchTopicDeliveries
    if (topicDevices > limit) {
      // one transaction holds the accept lock while it writes: millions of rows would stall every other send
      const problem = `topic messages would reach ${topicDevices} devices; at most ${limit} per batch`
      throw new ProblemError('invalid-request',
        `messages: the batch's topic messages would be queued for ${topicDevices} devices; ` +
        `a batch may queue at most ${limit} for topics. ` +
        'Send messages to large topics in smaller batches or on their own.',
        { errors: [{ field: 'messages', message: problem }] })
    }
    return this.commit({ messages, apiKeyId, idempotency, response: accepted => ({ messages: accepted }) })
  }

  /** Resolves when every send accepted so far is committed (before a shutdown). */
  idle (): Promise<void> {
    return this.#acceptor.idle()
  }

  // the response is what store/accept.ts built (or stored, for a replay) from the request's callback
  private async commit<R> (request: AcceptRequest): Promise<SendOutcome<R>> {
    const outcome = await this.#acceptor.accept(request)
    switch (outcome.kind) {
      case 'accepted':
        return { response: outcome.response as R, replayed: false }
      case 'replay':
        return { response: outcome.response as R, replayed: true }
      case 'idempotency-conflict':
        throw new ProblemError('idempotency-key-reused',
          'this Idempotency-Key was already used within 24 hours for a request with a different body; ' +
          'use a new key for a new message')
    }
  }

  private async newMessage (input: SendInput, apiKeyId: string | null, field?: string): Promise<NewMessage> {
    const id = randomUUID()
    const acceptedAt = new Date()
    const expiresAt = new Date(acceptedAt.getTime() + input.ttl * 1000)
    const payload = devicePayload(id, input, acceptedAt, expiresAt)
    if (payload.length > MAX_PAYLOAD_BYTES) {
      throw new ProblemError('payload-too-large',
        `${field === undefined ? '' : `${field}: `}the message a device receives would be ${payload.length} bytes; ` +
        `the limit is ${MAX_PAYLOAD_BYTES} (title, body, data and metadata together)`,
        { size: payload.length, limit: MAX_PAYLOAD_BYTES, ...(field === undefined ? {} : { field }) })
    }
    return {
      id,
      target: input.to,
      title: input.title,
      body: input.body,
      data: input.data,
      priority: input.priority,
      collapseKey: input.collapseKey,
      ttl: input.ttl,
      acceptedAt,
      expiresAt,
      payload,
      apiKeyId,
      topicSubscribers: 'topic' in input.to ? await this.topicSubscribers(broadcastTopic(input.to.topic)) : undefined
    }
  }

  /** After a commit: hand the new deliveries to the devices connected here; count what was replaced. */
  #dispatchAccepted (requests: AcceptRequest[], outcomes: AcceptOutcome[]): void {
    const items: DispatchItem[] = []
    let accepted = 0
    let replaced = 0
    outcomes.forEach((outcome, i) => {
      if (outcome.kind !== 'accepted') return
      outcome.messages.forEach((result, j) => {
        const m = requests[i].messages[j]
        accepted++
        replaced += result.replaced.length
        for (const d of result.deliveries) {
          items.push({
            seq: d.seq,
            messageId: m.id,
            deviceId: d.deviceId,
            userId: d.userId,
            topic: 'topic' in m.target ? m.target.topic : null,
            payload: m.payload,
            expiresAt: m.expiresAt,
            acceptedAt: m.acceptedAt,
            liveOnly: m.ttl === 0,
            after: d.after
          })
        }
      })
    })
    this.engine.dispatch(items)
    this.metrics?.messagesAccepted.inc(accepted)
    this.metrics?.deliveriesQueued.inc(items.length)
    this.metrics?.deliveries.inc({ status: 'replaced' }, replaced)
  }

  async get (id: string): Promise<MessageDetail | undefined> {
    const m = await getMessage(this.pool, id)
    if (!m) return undefined
    return {
      id: m.id,
      to: m.to,
      title: m.title,
      body: m.body,
      data: m.data,
      priority: m.priority,
      collapseKey: m.collapseKey,
      ttl: m.ttl,
      sentAt: m.acceptedAt,
      expiresAt: m.expiresAt,
      revokedAt: m.revokedAt,
      recipients: m.recipients,
      apiKey: m.apiKeyName,
      deliveries: m.deliveries
    }
  }

  log (filter: LogFilter): Promise<{ items: DeliveryLogRow[], next: LogKey | undefined }> {
    return listDeliveries(this.pool, filter)
  }

  /**
   * Revokes the message wherever it is not yet acknowledged; a channel about to write it finds it
   * revoked when it claims it.
   */
  async revoke (id: string, by: Actor): Promise<{ revoked: number } | undefined> {
    const result = await revokeMessage(this.pool, id, by === 'admin' ? 'admin-message-revoked' : 'message-revoked')
    if (!result) return undefined
    this.metrics?.deliveries.inc({ status: 'revoked' }, result.revoked.length)
    return { revoked: result.revoked.length }
  }
}
