import type { Herald } from './app.js'

/**
 * What a person sees after `npm start`: where the server is and how to send a first push.
 * Generated secrets appear here once; they are stored hashed and never printed again.
 */
export function printWelcome (herald: Herald, opts: { embedded: boolean, dataDir: string }): void {
  const { url, firstStart } = herald
  const key = firstStart.apiKey ?? '<your API key>'
  const lines = [
    '',
    `  Herald is running at ${url}`,
    `  Devices connect over MQTT on WebSocket: ${url.replace(/^http/, 'ws')}/mqtt`,
    herald.mqttTcpPort !== undefined ? `  Plain MQTT (TCP) on port ${herald.mqttTcpPort}` : '',
    `  Admin UI: ${url}/admin    Demo device (a phone in a browser tab): ${url}/demo`,
    opts.embedded ? `  Database: embedded Postgres, data in ${opts.dataDir}` : '  Database: DATABASE_URL',
    ''
  ]
  if (firstStart.adminPassword) {
    lines.push('  Admin credentials (shown this once, stored hashed):', '    user:     admin',
      `    password: ${firstStart.adminPassword}`, '')
  }
  if (firstStart.apiKey) {
    lines.push('  Bootstrap API key (shown this once, stored hashed):', `    ${firstStart.apiKey}`, '')
  }
  lines.push(
    '  Get a device token for user "alice":',
    `    curl -s -X POST ${url}/v1/tokens ` +
      `-H "Authorization: Bearer ${key}" -H "Content-Type: application/json" -d '{"user":"alice"}'`,
    '',
    '  Send alice a push:',
    `    curl -s -X POST ${url}/v1/messages -H "Authorization: Bearer ${key}" -H "Content-Type: application/json" \\`,
    '      -d \'{"to":{"user":"alice"},"title":"Hello","body":"Your first push"}\'',
    '',
    `  To watch it arrive, open ${url}/demo first, connect as alice, then send.`,
    '',
    '  Docs: README.md (REST and MQTT reference), openapi.yaml',
    ''
  )
  process.stdout.write(lines.filter((l, i, all) => l !== '' || all[i - 1] !== '').join('\n') + '\n')
}
