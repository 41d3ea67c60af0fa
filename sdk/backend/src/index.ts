// The backend client for Herald's REST API (openapi.yaml): typed from the spec (schema.ts is
// generated from it), retrying what is safe to retry, problems as HeraldError.
import type { components, operations } from './schema.js'
import { request, type Call, type CallOptions, type RetryInfo, type TransportOptions } from './transport.js'

export { HeraldConnectionError, HeraldError, type FieldError, type Problem, type ProblemCode } from './errors.js'
export type { CallOptions, RetryInfo } from './transport.js'
export type { components, operations, paths } from './schema.js'

type Schemas = components['schemas']
/** The JSON body of operation `O`'s answer with status `S`. */
type Answer<O extends keyof operations, S extends keyof operations[O]['responses']> =
  operations[O]['responses'][S] extends { content: { 'application/json': infer B } } ? B : never
/** The JSON body operation `O` takes. */
type RequestBody<O extends keyof operations> =
  NonNullable<operations[O]['requestBody']> extends { content: { 'application/json': infer B } } ? B : never

/**
 * A push to send. At least one of `title`, `body` or `data` (the spec's `anyOf`, which the type
 * generator cannot express, stated here).
 */
export type SendRequest = RequestBody<'sendMessage'> & (
  | { title: NonNullable<Schemas['SendRequest']['title']> }
  | { body: NonNullable<Schemas['SendRequest']['body']> }
  | { data: NonNullable<Schemas['SendRequest']['data']> })
export type SendResult = Answer<'sendMessage', 202>
export type SendBatchResult = Answer<'sendMessages', 202>
export type Message = Answer<'getMessage', 200>
export type Delivery = Schemas['Delivery']
export type DeliveryStatus = Schemas['DeliveryStatus']
export type DeliveryLogEntry = Schemas['DeliveryLogEntry']
export type DeliveryLogPage = Answer<'listDeliveries', 200>
/** Filters of the delivery log (`cursor` is followed by the iterator). */
export type DeliveryLogQuery = Omit<NonNullable<operations['listDeliveries']['parameters']['query']>, 'cursor'>
export type RevokeResult = Answer<'revokeMessage', 200>
export type TokenRequest = RequestBody<'createDeviceToken'>
export type Token = Answer<'createDeviceToken', 201>
export type Device = Schemas['Device']
export type DeviceEnded = Answer<'endDeviceSession', 200>
export type ApiKey = Schemas['ApiKey']
export type NewApiKey = Answer<'createApiKey', 201>
export type WebhookRequest = RequestBody<'createWebhook'>
export type WebhookEndpoint = Answer<'getWebhook', 200>
export type NewWebhookEndpoint = Answer<'createWebhook', 201>
export type WebhookEventType = Schemas['WebhookEventType']
export type WebhookDelivery = Schemas['WebhookDelivery']
export type WebhookDeliveryQuery = NonNullable<operations['listWebhookDeliveries']['parameters']['query']>
export type WebhookReplay = Answer<'replayWebhookDelivery', 202>

export interface HeraldOptions {
  /** where Herald answers, e.g. `https://push.example.com` */
  baseUrl: string
  /** for messages, tokens and devices (`Authorization: Bearer`) */
  apiKey?: string
  /** the admin password, for API keys and webhooks (HTTP Basic `admin:<password>`); never needed to send */
  adminPassword?: string
  /** how long a call may take, retries and their waits included; default 30 s */
  timeoutMs?: number
  /** retries after the first attempt; default 3, 0 turns retrying off */
  retries?: number
  /** the first retry's wait, doubled for each next one (with jitter); default 250 ms */
  retryDelayMs?: number
  /** the longest wait before a retry, a server's `Retry-After` included; default 10 s */
  maxRetryDelayMs?: number
  /** told before each retry: for logs and metrics */
  onRetry?: (info: RetryInfo) => void
  /** default: the global fetch */
  fetch?: typeof fetch
}

export interface SendOptions extends CallOptions {
  /**
   * Herald returns the first answer to a repeat of this key (per API key, within 24 hours) and
   * sends nothing. Default: a random UUID per call, kept across that call's retries. Pass your
   * own (an order id and event, say) to make retrying the whole call, or a retry by another
   * process, safe too.
   */
  idempotencyKey?: string
}

const DEFAULTS = { timeoutMs: 30_000, retries: 3, retryDelayMs: 250, maxRetryDelayMs: 10_000 }

const segment = encodeURIComponent

export class Herald {
  readonly messages: Messages
  readonly tokens: Tokens
  readonly devices: Devices
  readonly apiKeys: ApiKeys
  readonly webhooks: Webhooks
  readonly #transport: TransportOptions

  constructor (options: HeraldOptions) {
    if (!options?.baseUrl) throw new TypeError('new Herald(): baseUrl is required')
    new URL(options.baseUrl) // eslint-disable-line no-new -- throws now on a URL that is no URL, not at the first call
    const fetchImpl = options.fetch ?? globalThis.fetch
    if (typeof fetchImpl !== 'function') throw new TypeError('new Herald(): no global fetch here; pass fetch')
    this.#transport = {
      baseUrl: options.baseUrl,
      apiKey: options.apiKey,
      adminPassword: options.adminPassword,
      timeoutMs: options.timeoutMs ?? DEFAULTS.timeoutMs,
      retries: options.retries ?? DEFAULTS.retries,
      retryDelayMs: options.retryDelayMs ?? DEFAULTS.retryDelayMs,
      maxRetryDelayMs: options.maxRetryDelayMs ?? DEFAULTS.maxRetryDelayMs,
      fetch: fetchImpl,
      onRetry: options.onRetry
    }
    const call = <T>(c: Call, opts?: CallOptions): Promise<T> => request<T>(this.#transport, c, opts)
    this.messages = new Messages(call)
    this.tokens = new Tokens(call)
    this.devices = new Devices(call)
    this.apiKeys = new ApiKeys(call)
    this.webhooks = new Webhooks(call)
  }
}

type Caller = <T>(call: Call, opts?: CallOptions) => Promise<T>

export class Messages {
  constructor (private readonly call: Caller) {}

  /** Sends one push; resolves once Herald has committed it (202). */
  send (message: SendRequest, opts: SendOptions = {}): Promise<SendResult> {
    const { idempotencyKey = crypto.randomUUID(), ...callOpts } = opts
    return this.call({
      method: 'POST', path: '/v1/messages', body: message, auth: 'apiKey', idempotent: true, idempotencyKey
    }, callOpts)
  }

  /** Sends 1–500 pushes all together or none; one result per message, in order. */
  batch (messages: SendRequest[], opts: SendOptions = {}): Promise<SendBatchResult> {
    const { idempotencyKey = crypto.randomUUID(), ...callOpts } = opts
    return this.call({
      method: 'POST', path: '/v1/messages/batch', body: { messages }, auth: 'apiKey', idempotent: true, idempotencyKey
    }, callOpts)
  }

  /** The message and its delivery to each target device. */
  get (id: string, opts?: CallOptions): Promise<Message> {
    return this.call({ method: 'GET', path: `/v1/messages/${segment(id)}`, auth: 'apiKey', idempotent: true }, opts)
  }

  /**
   * The delivery log, newest first: `for await (const entry of herald.messages.list({user}))`
   * reads page after page as the loop asks (`limit` rows a request), `.pages()` gives whole pages.
   */
  list (query: DeliveryLogQuery = {}, opts?: CallOptions): DeliveryLog {
    return new DeliveryLog(cursor => this.call({
      method: 'GET', path: '/v1/messages', query: { ...query, cursor }, auth: 'apiKey', idempotent: true
    }, opts))
  }

  /** Revokes it on every device that has not received it; revoking again is harmless (`revoked: 0`). */
  revoke (id: string, opts?: CallOptions): Promise<RevokeResult> {
    return this.call({ method: 'DELETE', path: `/v1/messages/${segment(id)}`, auth: 'apiKey', idempotent: true }, opts)
  }
}

/** The delivery log as an async iterable of entries, fetched a page at a time following `nextCursor`. */
export class DeliveryLog implements AsyncIterable<DeliveryLogEntry> {
  constructor (private readonly page: (cursor: string | undefined) => Promise<DeliveryLogPage>) {}

  async * pages (): AsyncGenerator<DeliveryLogPage, void, undefined> {
    let cursor: string | undefined
    do {
      const page = await this.page(cursor)
      yield page
      cursor = page.nextCursor ?? undefined
    } while (cursor !== undefined)
  }

  async * [Symbol.asyncIterator] (): AsyncGenerator<DeliveryLogEntry, void, undefined> {
    for await (const page of this.pages()) yield * page.items
  }
}

export class Tokens {
  constructor (private readonly call: Caller) {}

  /** A device token (the MQTT CONNECT password) for `user`, signed by Herald. */
  create (body: TokenRequest, opts?: CallOptions): Promise<Token> {
    // signing stores nothing: a second token after a lost answer harms nobody
    return this.call({ method: 'POST', path: '/v1/tokens', body, auth: 'apiKey', idempotent: true }, opts)
  }
}

export class Devices {
  constructor (private readonly call: Caller) {}

  /** Every device of `user`, most recently seen first (`[]` for an unknown user). */
  list (user: string, opts?: CallOptions): Promise<Device[]> {
    return this.call({ method: 'GET', path: `/v1/users/${segment(user)}/devices`, auth: 'apiKey', idempotent: true },
      opts)
  }

  /** Ends the device's session and revokes its queue. */
  end (deviceId: string, opts?: CallOptions): Promise<DeviceEnded> {
    return this.call({ method: 'DELETE', path: `/v1/devices/${segment(deviceId)}`, auth: 'apiKey', idempotent: true },
      opts)
  }
}

/** API keys, with the admin password. */
export class ApiKeys {
  constructor (private readonly call: Caller) {}

  /**
   * A new key; `key` is shown only in this answer. Not retried once the request may have reached
   * Herald: a retry after a lost answer would make a second key.
   */
  create (body: RequestBody<'createApiKey'>, opts?: CallOptions): Promise<NewApiKey> {
    return this.call({ method: 'POST', path: '/v1/api-keys', body, auth: 'admin', idempotent: false }, opts)
  }

  /** Every key, revoked ones included, newest first. */
  list (opts?: CallOptions): Promise<ApiKey[]> {
    return this.call({ method: 'GET', path: '/v1/api-keys', auth: 'admin', idempotent: true }, opts)
  }

  /** Revokes the key; revoking again is harmless. */
  revoke (id: string, opts?: CallOptions): Promise<ApiKey> {
    return this.call({ method: 'DELETE', path: `/v1/api-keys/${segment(id)}`, auth: 'admin', idempotent: true }, opts)
  }
}

/** Webhook endpoints and their deliveries, with the admin password. */
export class Webhooks {
  constructor (private readonly call: Caller) {}

  /**
   * Registers an endpoint; `secret` (`whsec_…`) is shown only in this answer. Not retried once
   * the request may have reached Herald: a retry after a lost answer would register it twice.
   */
  create (body: WebhookRequest, opts?: CallOptions): Promise<NewWebhookEndpoint> {
    return this.call({ method: 'POST', path: '/v1/webhooks', body, auth: 'admin', idempotent: false }, opts)
  }

  /** Every endpoint, disabled ones included, newest first. */
  async list (opts?: CallOptions): Promise<WebhookEndpoint[]> {
    const answer = await this.call<Answer<'listWebhooks', 200>>(
      { method: 'GET', path: '/v1/webhooks', auth: 'admin', idempotent: true }, opts)
    return answer.webhooks
  }

  /** The endpoint and how its sending goes (status, failing since, pending and failed deliveries). */
  get (id: string, opts?: CallOptions): Promise<WebhookEndpoint> {
    return this.call({ method: 'GET', path: `/v1/webhooks/${segment(id)}`, auth: 'admin', idempotent: true }, opts)
  }

  /**
   * Removes it, with its pending and failed deliveries. Retried after a lost answer; a retry
   * that finds it already removed fails with not-found.
   */
  async delete (id: string, opts?: CallOptions): Promise<void> {
    await this.call({ method: 'DELETE', path: `/v1/webhooks/${segment(id)}`, auth: 'admin', idempotent: true }, opts)
  }

  /** Enables a disabled endpoint again (enabling an enabled one changes nothing). */
  enable (id: string, opts?: CallOptions): Promise<WebhookEndpoint> {
    return this.call({
      method: 'POST', path: `/v1/webhooks/${segment(id)}/enable`, auth: 'admin', idempotent: true
    }, opts)
  }

  /** Its last 100 deliveries (batches of events), newest first; `status` filters them. */
  async deliveries (id: string, query: WebhookDeliveryQuery = {}, opts?: CallOptions): Promise<WebhookDelivery[]> {
    const answer = await this.call<Answer<'listWebhookDeliveries', 200>>({
      method: 'GET', path: `/v1/webhooks/${segment(id)}/deliveries`, query, auth: 'admin', idempotent: true
    }, opts)
    return answer.deliveries
  }

  /**
   * Sends a failed (or waiting) delivery again now, with the same `webhook-id`. Not retried once
   * the request may have reached Herald: the receiver would get the batch once more.
   */
  replay (id: string, deliveryId: string, opts?: CallOptions): Promise<WebhookReplay> {
    return this.call({
      method: 'POST',
      path: `/v1/webhooks/${segment(id)}/deliveries/${segment(deliveryId)}/replay`,
      auth: 'admin',
      idempotent: false
    }, opts)
  }
}
