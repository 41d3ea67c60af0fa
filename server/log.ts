import { pino, type Logger } from 'pino'
import type { LogLevel } from './config.js'

export type { Logger }

/**
 * Structured JSON logs. Secrets never reach them: the redaction below is a safety net for
 * objects logged whole; code logs ids (message, user, device, API key id), never credentials.
 */
export function createLogger (level: LogLevel): Logger {
  return pino({
    level,
    base: { service: 'herald' },
    redact: {
      paths: [
        'password', 'token', 'apiKey', 'secret', 'authorization',
        '*.password', '*.token', '*.authorization', 'req.headers.authorization'
      ],
      censor: '[redacted]'
    }
  })
}
