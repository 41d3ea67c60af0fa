/**
 * Identifiers that end up inside MQTT topics (`users/{user}/inbox`, `topics/{name}`) must be a
 * single topic level: no `/`, no wildcards, no control characters, no leading `$`, and no half
 * of a surrogate pair (not UTF-8 encodable: MQTT and Postgres' jsonb refuse it).
 */
// eslint-disable-next-line no-control-regex -- control characters are exactly what this refuses
const TOPIC_LEVEL = /^(?!\$)[^/+#\u0000-\u001f\u007f\ud800-\udfff]{1,128}$/u

export const MAX_ID_LENGTH = 128

/** A UUID as Herald writes them (message and API key ids), in either case: always valid input for Postgres' uuid. */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
export const isUuid = (value: string): boolean => UUID.test(value)

export function isValidUserId (value: unknown): value is string {
  return typeof value === 'string' && TOPIC_LEVEL.test(value)
}

export function isValidTopicName (value: unknown): value is string {
  return typeof value === 'string' && TOPIC_LEVEL.test(value)
}

export const inboxTopic = (userId: string): string => `users/${userId}/inbox`
export const receiptsTopic = (userId: string): string => `users/${userId}/receipts`
export const broadcastTopic = (name: string): string => `topics/${name}`
export const BROADCAST_PREFIX = 'topics/'

// a UTF-16 code unit of a surrogate pair without its other half (JSON.parse accepts "\ud800")
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/

/**
 * Why a string cannot be stored as it is, or undefined. Postgres refuses U+0000 in text and in
 * jsonb, and refuses a lone surrogate in jsonb (in text it becomes U+FFFD); neither is text a
 * device could decode. Checked before a message reaches the accept transaction, where one
 * refused value would fail every message committed with it.
 */
export function textProblem (value: string): string | undefined {
  if (value.includes('\u0000')) return 'must not contain U+0000 (NUL)'
  if (LONE_SURROGATE.test(value)) return 'must be valid Unicode: it holds half of a surrogate pair (\\ud800–\\udfff)'
  return undefined
}
