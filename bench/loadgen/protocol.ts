// What the bench orchestrator and its load-generator workers say to each other over IPC.

/** Devices `${idPrefix}${i}` of users `${userPrefix}${i}` for i in [from, to). */
export interface DeviceSpec {
  idPrefix: string
  userPrefix: string
  from: number
  to: number
  /** topic filters to subscribe at QoS 1; `{user}` becomes the device's user id */
  topics: string[]
  /** HS256 secret for the device tokens (Herald); baselines ignore the password */
  secret: string
}

export interface ConnectRequest {
  url: string
  /** several processes of one server: device i connects to urls[i mod length] (then `url` is unused) */
  urls?: string[]
  spec: DeviceSpec
  clean: boolean
  /** loopback source address for this worker's sockets (127.0.x.y) */
  localAddress?: string
  /** connections being opened at once */
  concurrency: number
  keepalive: number
}

export interface ConnectResult {
  connected: number
  failed: number
  errors: string[]
  ms: number
}

/** Users `${prefix}${i}` for i in [from, to). */
export interface UserRange { prefix: string, from: number, to: number }

export type Plan =
  /** `count` messages, message i to user (i mod n): Herald `to.user`, baselines `users/{u}/inbox` */
  | { kind: 'user-rr', users: UserRange, count: number, bBase: number }
  /** `count` messages to one topic: Herald `to.topic`, baselines `topics/{name}` */
  | { kind: 'topic', topic: string, count: number, bBase: number }
  /** Herald only: one request `to.users` for every user in the range */
  | { kind: 'users-one', users: UserRange, b: number }
  /** baselines only: one publish per user, all carrying the same bench id */
  | { kind: 'users-each', users: UserRange, b: number }

export interface SendRequest {
  via: 'http' | 'mqtt'
  /** http: the server's base URL; mqtt: its ws:// URL */
  url: string
  /**
   * http only, several processes of one server: the base URLs to spread requests over. A round of
   * `every` messages goes to one URL, the next round to the next, so with `every` = the plan's user
   * count each device gets its messages through every process in turn. Each message carries the
   * index of the URL it went to (`data.n`), so a device can tell whether it came through its own process.
   */
  spread?: { urls: string[], every: number }
  apiKey?: string
  plan: Plan
  /** requests (http) or unacknowledged QoS 1 publishes (mqtt) in flight at most */
  concurrency: number
  /** paced: messages per second on an hrtime schedule; unset: as fast as `concurrency` allows */
  rate?: number
  /** bytes of body padding (so the JSON a device receives is about 200 bytes) */
  pad: number
  /** http only: messages per `POST /v1/messages/batch` request (unset: one `POST /v1/messages` each) */
  batch?: number
  /** keep the message ids Herald answered with */
  collectIds?: boolean
  /** stop issuing new sends after this long (the ones in flight still finish): loads are bounded in time too */
  maxMs?: number
}

export interface SendResult {
  sent: number
  ok: number
  failed: number
  statuses: Record<string, number>
  errors: string[]
  ids: string[]
  firstAt: number
  lastAt: number
  /** paced sends: how late each send was against its schedule, ms */
  slip: { p50: number, p99: number, max: number }
}

export interface TrackRequest {
  /** unique (device, message) receipts to wait for before reporting `done` */
  expected: number
  /** keep per-message latencies (send stamp → receipt) */
  samples: boolean
}

export interface CollectResult {
  unique: number
  duplicates: number
  firstAt: number
  lastAt: number
  /** send stamp (data.t) → receipt, ms */
  latencies?: Float64Array
  /** Herald only: the payload's sentAt (server accept time, ms precision) → receipt, ms */
  sentAtLatencies?: Float64Array
  /**
   * the same samples split by whether the message was sent through the process the device is
   * connected to (`same`) or another one (`other`); only when devices were connected with `urls`
   */
  byProcess?: Record<'same' | 'other', { latencies: Float64Array, sentAtLatencies: Float64Array }>
  /** this worker's event-loop delay since `track`, ms */
  eventLoop: { p50: number, p99: number, max: number }
  cpuMs: number
  wallMs: number
  lost: number
}

export type Request =
  | { op: 'connect', args: ConnectRequest }
  | { op: 'disconnect', args: { idPrefix?: string } }
  | { op: 'track', args: TrackRequest }
  | { op: 'expect', args: { expected: number } }
  | { op: 'collect', args: Record<string, never> }
  | { op: 'send', args: SendRequest }

export type WorkerEvent =
  | { event: 'done', at: number, unique: number }
  | { event: 'lost', count: number, reason: string }
