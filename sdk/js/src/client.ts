// The device client: one MQTT connection at a time, renewed before its token expires and
// reconnected with backoff when lost; messages handed to the app once each; receipts kept until
// the server has recorded them.
import { backoffDelay, type BackoffOptions } from './backoff.js'
import { openConnection, type Connection } from './connection.js'
import { newDeviceId } from './deviceId.js'
import { HeraldError } from './errors.js'
import { Emitter } from './events.js'
import { parsePush, withReceipts, type HeraldMessage } from './message.js'
import { Outbox, RECEIPT_EVENTS, type Receipt, type ReceiptEvent } from './outbox.js'
import { SeenIds } from './seen.js'
import { defaultStorage, JsonSlot, type HeraldStorage } from './storage.js'
import { DEFAULT_RENEW_BEFORE_EXPIRY_MS, holdToken, renewalTime, type HeldToken } from './token.js'

/**
 * `connecting` (also while renewing the token), `connected`, `offline` (waiting to retry),
 * `refused` (stopped for good: see `error`), `closed` (after `close()`).
 */
export type ConnectionState = 'connecting' | 'connected' | 'offline' | 'refused' | 'closed'

export interface HeraldClientOptions {
  /** Herald's MQTT endpoint, `wss://push.example.com/mqtt`; an http(s) URL means its `/mqtt` */
  url: string
  /**
   * Gets a device token from your backend (which calls Herald's `POST /v1/tokens` or signs a
   * JWT). Called before the first connection, again shortly before the token expires, and after
   * the server refused a token it had accepted before.
   */
  token: () => Promise<string>
  /**
   * This install's id. By default one is created per user (the token's `sub`) the first time
   * and kept in `storage`: a Herald device id belongs to one user.
   */
  deviceId?: string
  /** Defaults to `localStorage` in a browser, memory elsewhere; pass AsyncStorage in React Native. */
  storage?: HeraldStorage
  /** Broadcast topics to receive (`news` for `topics/news`); the user's inbox is always received. */
  topics?: string[]
  /** How many message ids are remembered to drop a message sent twice (default 1 000). */
  dedupeLimit?: number
  /** Waits between reconnection attempts. */
  reconnect?: BackoffOptions
  /** Fetch a new token this long before the current one expires, in ms (default 60 000, at most half its life). */
  renewBeforeExpiryMs?: number
  /** MQTT keep-alive, in seconds (default 60). */
  keepaliveSeconds?: number
  /** How long to wait for the server's answer to a connection, in ms (default 10 000). */
  connectTimeoutMs?: number
  /** The clock tokens and `expiresAt` are compared with (default Date.now); pass a server-synced one if you have it. */
  now?: () => number
}

export interface HeraldEvents {
  /** A push, handed over once even if the server sends it again. */
  message: (message: HeraldMessage) => void
  state: (state: ConnectionState) => void
  /** A push that arrived after its `expiresAt`: acknowledged, not handed over as a message. */
  expired: (message: HeraldMessage) => void
  /** The server recorded a receipt (its PUBACK arrived). */
  receipt: (receipt: Receipt) => void
  /** Something went wrong; `error.fatal` ones stop the client (state `refused`). */
  error: (error: HeraldError) => void
}

/** What the client keeps for one user on this install. */
interface Device {
  userId: string | undefined
  id: string
  seen: SeenIds
  outbox: Outbox
  seenSlot: JsonSlot<unknown>
  outboxSlot: JsonSlot<unknown>
}

/** The connection in use, and the receipts sent on it and not yet acknowledged. */
interface Live { connection: Connection, device: Device, sending: Set<string> }

type Outcome = 'lost' | 'renew' | 'retry-now' | 'stop'

const DEFAULT_KEEPALIVE_S = 60
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000
const MAX_TIMER_MS = 2 ** 31 - 1

export function createHeraldClient (options: HeraldClientOptions): HeraldClient {
  return new HeraldClient(options)
}

export class HeraldClient extends Emitter<HeraldEvents> {
  private currentState: ConnectionState = 'connecting'
  private lastError: HeraldError | undefined
  private readonly storage: HeraldStorage
  private readonly url: string
  private readonly now: () => number
  private readonly topics: Set<string>
  /** topics unsubscribed while offline: the server's session still has them */
  private readonly unsubscribed = new Set<string>()
  private device: Device | undefined
  private readonly deviceWaiters: Array<(device: Device | undefined) => void> = []
  private token: HeldToken | undefined
  private live: Live | undefined
  /** a connection attempt waiting for its CONNACK */
  private opening: Promise<Connection> | undefined
  private stopped = false
  private attempt = 0
  /** ends the current backoff wait early */
  private wake: (() => void) | undefined
  private cancelRenewal: (() => void) | undefined
  private readonly listenerWaiters: Array<() => void> = []
  private closing: Promise<void> | undefined
  private readonly onOnline = (): void => this.wake?.()

  constructor (private readonly options: HeraldClientOptions) {
    super()
    if (typeof options.token !== 'function') throw new TypeError('token must be a function returning a Promise<string>')
    this.url = webSocketUrl(options.url)
    this.storage = options.storage ?? defaultStorage()
    this.now = options.now ?? Date.now
    this.topics = new Set(options.topics ?? [])
    // a browser coming back online retries at once rather than at the end of its backoff
    host.addEventListener?.('online', this.onOnline)
    void this.run()
  }

  get state (): ConnectionState {
    return this.currentState
  }

  /** The error that stopped the client (state `refused`), if any. */
  get error (): HeraldError | undefined {
    return this.lastError
  }

  /** This install's device id, once known (after the first token, unless given in the options). */
  get deviceId (): string | undefined {
    return this.device?.id ?? this.options.deviceId
  }

  /** Resolves when connected (at once if connected now); rejects when refused or closed. */
  whenConnected (): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (state: ConnectionState): boolean => {
        if (state === 'connected') resolve()
        else if (state === 'refused') reject(this.lastError)
        else if (state === 'closed') reject(new HeraldError('closed', 'the client was closed'))
        else return false
        return true
      }
      if (check(this.currentState)) return
      const off = this.on('state', state => { if (check(state)) off() })
    })
  }

  /**
   * Reports what happened to a message: the same as `message.displayed()` and its siblings. The
   * receipt is stored, sent when connected (now or later, after a restart too), and resolves
   * once stored; the `receipt` event says when the server recorded it.
   */
  async receipt (id: string, event: ReceiptEvent): Promise<void> {
    const device = this.device ?? await new Promise<Device | undefined>(resolve => this.deviceWaiters.push(resolve))
    if (!device) throw new HeraldError('closed', 'the client was closed before it knew its device')
    await this.queueReceipt(device, id, event)
  }

  /**
   * Receives broadcast topic `name` from now on. Resolves once the server granted it, or at once
   * while offline (it is asked for on connecting; a refusal then comes as an `error` event).
   */
  async subscribe (name: string): Promise<void> {
    this.topics.add(name)
    this.unsubscribed.delete(name)
    const live = this.live
    if (!live) return
    const refused = (why: string, cause?: unknown): HeraldError => {
      this.topics.delete(name)
      return new HeraldError('subscription-refused', `topics/${name}: ${why}`, false, { cause })
    }
    // mqtt.js refuses a name with a wildcard itself; the server refuses what else it does not accept
    const [qos] = await live.connection.subscribe([`topics/${name}`])
      .catch((err: Error) => { throw refused(err.message, err) })
    if (qos === 128) throw refused('the server refused the subscription')
  }

  /** Stops receiving broadcast topic `name`; sent on connecting when offline now. */
  async unsubscribe (name: string): Promise<void> {
    this.topics.delete(name)
    this.unsubscribed.add(name)
    const live = this.live
    if (!live) return
    await live.connection.unsubscribe([`topics/${name}`])
    this.unsubscribed.delete(name)
  }

  /**
   * Disconnects and stops. Receipts not yet sent stay in storage for the next client; messages
   * handed over but not yet acknowledged come again then, and are dropped as duplicates.
   */
  close (): Promise<void> {
    this.closing ??= (async () => {
      this.stopped = true
      host.removeEventListener?.('online', this.onOnline)
      this.wake?.()
      this.cancelRenewal?.()
      for (const waiter of this.listenerWaiters.splice(0)) waiter()
      for (const waiter of this.deviceWaiters.splice(0)) waiter(undefined)
      // an attempt in progress ends within its connect timeout
      const opened = await this.opening?.catch(() => undefined)
      await (opened ?? this.live?.connection)?.end()
      await Promise.all([this.device?.seenSlot.flushed(), this.device?.outboxSlot.flushed()])
      this.setState('closed', true)
    })()
    return this.closing
  }

  protected override added (event: keyof HeraldEvents): void {
    if (event === 'message') for (const waiter of this.listenerWaiters.splice(0)) waiter()
  }

  private async run (): Promise<void> {
    while (!this.stopped) {
      const outcome = await this.connectAndServe()
      if (outcome === 'stop' || this.stopped) return
      if (outcome === 'lost') {
        this.setState('offline')
        await this.pause(backoffDelay(this.attempt++, this.options.reconnect))
      }
    }
  }

  /** One connection, from fetching its token to its end. */
  private async connectAndServe (): Promise<Outcome> {
    this.setState('connecting')
    let token: HeldToken
    let device: Device
    try {
      token = await this.currentToken()
      device = await this.deviceFor(token)
    } catch (err) {
      this.report(err as HeraldError)
      return 'lost'
    }
    if (this.stopped) return 'stop'
    let connection: Connection
    try {
      connection = await (this.opening = openConnection({
        url: this.url,
        deviceId: device.id,
        token: token.value,
        keepaliveSeconds: this.options.keepaliveSeconds ?? DEFAULT_KEEPALIVE_S,
        connectTimeoutMs: this.options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
        onPublish: (topic, payload) => this.onPublish(device, topic, payload)
      }))
    } catch (err) {
      return this.refused(err as HeraldError, token)
    } finally {
      this.opening = undefined
    }
    if (this.stopped) {
      await connection.end()
      return 'stop'
    }
    token.accepted = true
    this.attempt = 0
    const live: Live = { connection, device, sending: new Set() }
    this.live = live
    this.setState('connected')
    void this.subscribeAll(live)
    this.flushOutbox(device)
    const renewed = this.renewal(token)
    const outcome = await Promise.race([connection.ended.then(() => 'lost' as const), renewed])
    this.cancelRenewal?.()
    this.live = undefined
    // a renewal ends the connection itself: the new token is in hand, the next one starts at once
    if (outcome === 'renew') await connection.end()
    return this.stopped ? 'stop' : outcome
  }

  /** What a failed connection attempt leads to. */
  private refused (error: HeraldError, token: HeldToken): Outcome {
    if (error.code === 'token-refused' && token.accepted) {
      // accepted before, refused now: it expired by the server's clock (or the server's key
      // changed). One fresh token is worth a try; if that is refused too, the provider is wrong.
      this.token = undefined
      return 'retry-now'
    }
    if (!error.fatal) {
      this.report(error)
      return 'lost'
    }
    this.lastError = error
    this.stopped = true
    this.setState('refused')
    this.report(error)
    return 'stop'
  }

  /** The token to connect with: the one held, unless it is due for renewal. */
  private async currentToken (): Promise<HeldToken> {
    const held = this.token
    const renewAt = held && renewalTime(held, this.renewBefore())
    if (held && (renewAt === undefined || this.now() < renewAt)) return held
    this.token = await this.fetchToken()
    return this.token
  }

  private async fetchToken (): Promise<HeldToken> {
    let value: unknown
    try {
      value = await this.options.token()
    } catch (err) {
      throw new HeraldError('token-provider-failed', `the token provider failed: ${(err as Error)?.message ?? err}`,
        false, { cause: err })
    }
    if (typeof value !== 'string' || value === '') {
      throw new HeraldError('token-provider-failed', 'the token provider must resolve to a device token (a string)')
    }
    return holdToken(value, this.now())
  }

  private renewBefore (): number {
    return this.options.renewBeforeExpiryMs ?? DEFAULT_RENEW_BEFORE_EXPIRY_MS
  }

  /**
   * Resolves with 'renew' once a new token is in hand, shortly before `token` expires; never for
   * a token without a readable expiry. A failed fetch is retried with backoff while connected:
   * if it never works, the server ends the connection when the token expires.
   */
  private renewal (token: HeldToken): Promise<'renew'> {
    const at = renewalTime(token, this.renewBefore())
    return new Promise(resolve => {
      if (at === undefined) return
      let timer: ReturnType<typeof setTimeout> | undefined
      let cancelled = false
      let failures = 0
      this.cancelRenewal = () => { cancelled = true; clearTimeout(timer) }
      const fetchAt = (when: number): void => {
        // timers hold at most ~24.8 days; a longer wait is taken in steps
        timer = setTimeout(() => {
          if (cancelled) return
          if (this.now() < when) return fetchAt(when)
          this.fetchToken().then(fresh => {
            if (cancelled) return
            // the provider still hands out this one (it caches it): reconnecting would gain nothing
            if (fresh.value === token.value) return
            this.token = fresh
            resolve('renew')
          }, (err: HeraldError) => {
            if (cancelled) return
            this.report(err)
            fetchAt(this.now() + backoffDelay(failures++, this.options.reconnect))
          })
        }, Math.min(MAX_TIMER_MS, Math.max(0, when - this.now())))
      }
      fetchAt(at)
    })
  }

  /** The device of the token's user: its id, and the dedupe set and receipts kept for it. */
  private async deviceFor (token: HeldToken): Promise<Device> {
    if (this.device && this.device.userId === token.userId) return this.device
    const id = this.options.deviceId ?? await this.storedDeviceId(token.userId)
    const seen = new SeenIds(this.options.dedupeLimit)
    const outbox = new Outbox()
    const failed = (err: unknown): void => this.report(new HeraldError('storage-failed',
      `storage failed: ${(err as Error)?.message ?? err}`, false, { cause: err }))
    const device: Device = {
      userId: token.userId,
      id,
      seen,
      outbox,
      seenSlot: new JsonSlot(this.storage, `herald:seen:${id}`, () => seen.toJSON(), failed),
      outboxSlot: new JsonSlot(this.storage, `herald:outbox:${id}`, () => outbox.toJSON(), failed)
    }
    seen.restore(await device.seenSlot.load(), this.now())
    outbox.restore(await device.outboxSlot.load())
    this.device = device
    for (const waiter of this.deviceWaiters.splice(0)) waiter(device)
    return device
  }

  /** The id kept for this user on this install, created the first time. */
  private async storedDeviceId (userId: string | undefined): Promise<string> {
    const key = userId === undefined ? 'herald:device' : `herald:device:${userId}`
    try {
      const stored = await this.storage.getItem(key)
      if (stored) return stored
      const id = newDeviceId()
      await this.storage.setItem(key, id)
      return id
    } catch (err) {
      this.report(new HeraldError('storage-failed',
        `storage failed; this device id lasts until the app restarts: ${(err as Error)?.message ?? err}`,
        false, { cause: err }))
      return newDeviceId()
    }
  }

  private async subscribeAll ({ connection, device }: Live): Promise<void> {
    const names = [...this.topics].map(name => `topics/${name}`)
    // the inbox comes whether subscribed or not; subscribing is what MQTT clients expect
    const topics = device.userId === undefined ? names : [`users/${device.userId}/inbox`, ...names]
    const dropped = [...this.unsubscribed]
    try {
      if (dropped.length > 0) {
        await connection.unsubscribe(dropped.map(name => `topics/${name}`))
        for (const name of dropped) this.unsubscribed.delete(name)
      }
      if (topics.length === 0) return
      const granted = await connection.subscribe(topics)
      granted.forEach((qos, i) => {
        if (qos === 128) {
          this.report(new HeraldError('subscription-refused', `the server refused the subscription to ${topics[i]}`))
        }
      })
    } catch {
      // the connection ended first: the next one subscribes again
    }
  }

  /** A PUBLISH from the server; its PUBACK goes when this resolves. */
  private async onPublish (device: Device, topic: string, payload: string): Promise<void> {
    const push = parsePush(payload)
    if (!push) {
      this.report(new HeraldError('bad-message', `a message on ${topic} is not a Herald push; dropped`))
      return
    }
    // sent again because its PUBACK was lost (a dropped connection, a server restart)
    if (device.seen.has(push.id)) return
    const message = withReceipts(push, (id, event) => this.queueReceipt(device, id, event))
    const expiresAt = Date.parse(push.expiresAt)
    if (expiresAt <= this.now()) {
      device.seen.add(push.id, expiresAt, this.now())
      this.emit('expired', message)
      await device.seenSlot.save()
      return
    }
    // held, unacknowledged, until the app listens: the server keeps it meanwhile
    if (this.listenerCount('message') === 0) {
      await new Promise<void>(resolve => this.listenerWaiters.push(resolve))
      // the connection may have ended meanwhile, and the next one brought it again
      if (this.stopped || device.seen.has(push.id)) return
    }
    device.seen.add(push.id, expiresAt, this.now())
    // Handed over before its id is stored: an app killed in between gets it again on its next
    // start, rather than never (exactly once otherwise).
    this.emit('message', message)
    await device.seenSlot.save()
  }

  private async queueReceipt (device: Device, id: string, event: ReceiptEvent): Promise<void> {
    if (!RECEIPT_EVENTS.includes(event)) throw new TypeError(`event must be one of ${RECEIPT_EVENTS.join(', ')}`)
    if (device.outbox.add({ id, event })) await device.outboxSlot.save()
    this.flushOutbox(device)
  }

  /** Sends every stored receipt of `device` not already on its way, if it is the one connected. */
  private flushOutbox (device: Device): void {
    const live = this.live
    if (!live || live.device !== device || device.userId === undefined) return
    for (const receipt of device.outbox.list()) {
      const key = `${receipt.id} ${receipt.event}`
      if (live.sending.has(key)) continue
      live.sending.add(key)
      live.connection.publish(`users/${device.userId}/receipts`, JSON.stringify(receipt)).then(async () => {
        device.outbox.remove(receipt)
        this.emit('receipt', { id: receipt.id, event: receipt.event })
        await device.outboxSlot.save()
      }, () => {
        // the connection ended first: the receipt stays stored and goes on the next one
      }).finally(() => live.sending.delete(key))
    }
  }

  private pause (ms: number): Promise<void> {
    return new Promise(resolve => {
      const done = (): void => {
        clearTimeout(timer)
        this.wake = undefined
        resolve()
      }
      const timer = setTimeout(done, ms)
      this.wake = done
    })
  }

  private setState (state: ConnectionState, final = false): void {
    // after close() or a refusal, only close() itself says anything more
    if (this.currentState === state || (this.stopped && !final && state !== 'refused')) return
    this.currentState = state
    this.emit('state', state)
  }

  private report (error: HeraldError): void {
    this.emit('error', error)
  }
}

/** `https://host` → `wss://host/mqtt`; a ws(s) URL is used as it is. */
function webSocketUrl (url: string): string {
  const parsed = new URL(url)
  if (parsed.protocol === 'ws:' || parsed.protocol === 'wss:') return url
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new TypeError(`url must be a ws:, wss:, http: or https: URL, got ${url}`)
  }
  parsed.protocol = parsed.protocol === 'https:' ? 'wss:' : 'ws:'
  if (parsed.pathname === '/') parsed.pathname = '/mqtt'
  return parsed.toString()
}

/** A browser's window: Node and React Native have no such events on globalThis. */
const host = globalThis as unknown as {
  addEventListener?: (type: 'online', listener: () => void) => void
  removeEventListener?: (type: 'online', listener: () => void) => void
}
