/**
 * A new device id: a random UUID (v4). `crypto.randomUUID` exists only in secure contexts
 * (https, localhost) and `crypto.getRandomValues` is missing on React Native without a polyfill;
 * the id need only be unique, so Math.random is the last resort.
 */
export function newDeviceId (): string {
  const crypto = (globalThis as { crypto?: WebCrypto }).crypto
  if (typeof crypto?.randomUUID === 'function') return crypto.randomUUID()
  const bytes = new Uint8Array(16)
  if (typeof crypto?.getRandomValues === 'function') crypto.getRandomValues(bytes)
  else for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256)
  bytes[6] = (bytes[6]! & 0x0f) | 0x40 // version 4
  bytes[8] = (bytes[8]! & 0x3f) | 0x80 // RFC 4122 variant
  const hex = [...bytes].map(b => b.toString(16).padStart(2, '0')).join('')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

interface WebCrypto {
  randomUUID?: () => string
  getRandomValues?: (bytes: Uint8Array) => Uint8Array
}
