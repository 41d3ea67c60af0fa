// Device authentication at CONNECT: issue 2, "Contract: devices". Each bad token gets CONNACK 4
// or 5 and leaves no session behind; algorithms are pinned to the configured key; the connection
// ends when the token does.
import { test, after, before, describe } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPairSync, createSign, type KeyObject } from 'node:crypto'
import jwt from 'jsonwebtoken'
import { startTestHerald, connectDevice, JWT_SECRET, type TestHerald } from './helpers/herald.js'
import { connectRefused, craftJwt, hs256, nowSeconds, sleep, waitForClose } from './helpers/probe.js'

const REFUSED = [4, 5] // bad user name or password / not authorized

async function assertNoSession (h: TestHerald, user: string, deviceIds: string[]): Promise<void> {
  const devices = await h.api(`/v1/users/${encodeURIComponent(user)}/devices`)
  assert.equal(devices.status, 200)
  assert.deepEqual(devices.body, [], `${user} must have no device`)
  const { rows } = await h.db.pool.query('select device_id from devices where device_id = any($1::text[])', [deviceIds])
  assert.deepEqual(rows, [], 'no refused device id was registered')
  const sessions = await h.db.pool.query(
    'select client_id from mqtt_subscriptions where client_id = any($1::text[])', [deviceIds])
  assert.deepEqual(sessions.rows, [], 'no refused device has MQTT session state')
}

function rsaKeys (): { publicKey: string, privateKey: string } {
  return generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' }
  })
}

describe('HS256 server (JWT_SECRET)', () => {
  let h: TestHerald
  before(async () => { h = await startTestHerald() })
  after(async () => { await h.stop() })

  test('each bad token gets CONNACK 4 or 5 and no session', async () => {
    const exp = nowSeconds() + 3600
    const cases: Array<{ name: string, password?: string }> = [
      { name: 'no password' },
      { name: 'empty password', password: '' },
      { name: 'garbage', password: 'this is not a token' },
      { name: 'three garbage parts', password: 'aaa.bbb.ccc' },
      { name: 'alg none', password: craftJwt({ alg: 'none', typ: 'JWT' }, { sub: 'mallory', exp }) },
      {
        name: 'alg none with a signature',
        password: craftJwt({ alg: 'none', typ: 'JWT' }, { sub: 'mallory', exp }, hs256(JWT_SECRET))
      },
      {
        name: 'wrong signature',
        password: craftJwt({ alg: 'HS256', typ: 'JWT' }, { sub: 'mallory', exp },
          hs256('another-secret-that-is-long-enough-0123456789'))
      },
      {
        name: 'tampered payload',
        password: (() => {
          const [header, , signature] = jwt.sign({ sub: 'someone', exp }, JWT_SECRET, { algorithm: 'HS256' }).split('.')
          return `${header}.${Buffer.from(JSON.stringify({ sub: 'mallory', exp })).toString('base64url')}.${signature}`
        })()
      },
      {
        name: 'HS512 with the right secret',
        password: jwt.sign({ sub: 'mallory', exp }, JWT_SECRET, { algorithm: 'HS512' })
      },
      {
        name: 'expired exp',
        password: craftJwt({ alg: 'HS256', typ: 'JWT' }, { sub: 'mallory', exp: nowSeconds() - 10 }, hs256(JWT_SECRET))
      },
      {
        name: 'missing exp',
        password: craftJwt({ alg: 'HS256', typ: 'JWT' }, { sub: 'mallory', iat: nowSeconds() }, hs256(JWT_SECRET))
      },
      {
        name: 'exp not a number',
        password: craftJwt({ alg: 'HS256', typ: 'JWT' }, { sub: 'mallory', exp: String(exp) }, hs256(JWT_SECRET))
      },
      { name: 'missing sub', password: craftJwt({ alg: 'HS256', typ: 'JWT' }, { exp }, hs256(JWT_SECRET)) },
      {
        name: 'sub not a string',
        password: craftJwt({ alg: 'HS256', typ: 'JWT' }, { sub: 42, exp }, hs256(JWT_SECRET))
      },
      {
        name: 'sub with a wildcard',
        password: craftJwt({ alg: 'HS256', typ: 'JWT' }, { sub: 'mallory/#', exp }, hs256(JWT_SECRET))
      },
      {
        name: 'payload not an object',
        password: craftJwt({ alg: 'HS256', typ: 'JWT' }, ['mallory'], hs256(JWT_SECRET))
      }
    ]
    const ids: string[] = []
    for (const [i, c] of cases.entries()) {
      const clientId = `auth-bad-${i}`
      ids.push(clientId)
      const code = await connectRefused(h.wsUrl,
        { clientId, ...(c.password === undefined ? {} : { password: c.password }) })
      assert.ok(REFUSED.includes(code), `${c.name}: CONNACK ${code}, expected 4 or 5`)
    }
    await assertNoSession(h, 'mallory', ids)
  })

  test('a token signed by hand with JWT_SECRET works (the server need not issue it)', async () => {
    const token = craftJwt({ alg: 'HS256', typ: 'JWT' }, { sub: 'harriet', exp: nowSeconds() + 600 }, hs256(JWT_SECRET))
    const device = await connectDevice(h.wsUrl, { clientId: 'auth-hand-signed', password: token })
    try {
      const devices = await h.api('/v1/users/harriet/devices')
      assert.deepEqual(devices.body.map((d: any) => [d.deviceId, d.online]), [['auth-hand-signed', true]])
    } finally {
      await device.close()
    }
  })

  test('the username is ignored: the token says who the device is', async () => {
    const device = await connectDevice(h.wsUrl,
      { clientId: 'auth-username', username: 'bob', password: await h.token('ursula') })
    try {
      assert.equal((await h.api('/v1/users/bob/devices')).body.length, 0)
      assert.equal((await h.api('/v1/users/ursula/devices')).body.length, 1)
    } finally {
      await device.close()
    }
  })

  test('the server closes the connection when the token expires', async () => {
    const token = await h.token('eve', 2)
    const device = await connectDevice(h.wsUrl, { clientId: 'auth-expiring', password: token, clean: false })
    const connectedAt = Date.now()
    const exp = (jwt.decode(token) as { exp: number }).exp * 1000
    await waitForClose(device.client, exp - Date.now() + 3_000)
    const closedAt = Date.now()
    assert.ok(closedAt >= exp - 50, `closed ${exp - closedAt} ms before the token expired`)
    assert.ok(closedAt - connectedAt < 4_000)
    device.client.end(true)
    // the same token cannot come back
    assert.ok(REFUSED.includes(await connectRefused(h.wsUrl, { clientId: 'auth-expiring', password: token })))
    // and the device shows offline soon
    let online = true
    for (let i = 0; i < 40 && online; i++) {
      online = (await h.api('/v1/users/eve/devices')).body[0]?.online
      if (online) await sleep(50)
    }
    assert.equal(online, false)
  })
})

describe('RS256 server (JWT_PUBLIC_KEY)', () => {
  let h: TestHerald
  const keys = rsaKeys()
  const other = rsaKeys()
  before(async () => { h = await startTestHerald({ env: { JWT_SECRET: '', JWT_PUBLIC_KEY: keys.publicKey } }) })
  after(async () => { await h.stop() })

  test('a valid RS256 token connects', async () => {
    const token = jwt.sign({ sub: 'rita', exp: nowSeconds() + 600 }, keys.privateKey, { algorithm: 'RS256' })
    const device = await connectDevice(h.wsUrl, { clientId: 'auth-rs256', password: token })
    try {
      await device.client.subscribeAsync('users/rita/inbox', { qos: 1 })
      const sent = await h.api('/v1/messages', { body: { to: { user: 'rita' }, title: 'signed elsewhere' } })
      const [msg] = await device.waitFor(1)
      assert.equal(msg.payload.id, sent.body.id)
    } finally {
      await device.close()
    }
  })

  test('HS256 tokens (also with the public key as the secret), alg none and another key are refused', async () => {
    const exp = nowSeconds() + 600
    const cases: Array<[string, string]> = [
      ['HS256 with the configured JWT_SECRET of other tests',
        craftJwt({ alg: 'HS256', typ: 'JWT' }, { sub: 'mallory', exp }, hs256(JWT_SECRET))],
      ['HS256 with the public key PEM as the secret',
        craftJwt({ alg: 'HS256', typ: 'JWT' }, { sub: 'mallory', exp }, hs256(keys.publicKey))],
      ['alg none', craftJwt({ alg: 'none', typ: 'JWT' }, { sub: 'mallory', exp })],
      ['RS256 signed by another key', jwt.sign({ sub: 'mallory', exp }, other.privateKey, { algorithm: 'RS256' })],
      ['RS512 with the right key', jwt.sign({ sub: 'mallory', exp }, keys.privateKey, { algorithm: 'RS512' })],
      ['expired RS256',
        craftJwt({ alg: 'RS256', typ: 'JWT' }, { sub: 'mallory', exp: nowSeconds() - 5 }, rs256(keys.privateKey))],
      ['RS256 without exp', craftJwt({ alg: 'RS256', typ: 'JWT' }, { sub: 'mallory' }, rs256(keys.privateKey))],
      ['RS256 without sub', craftJwt({ alg: 'RS256', typ: 'JWT' }, { exp }, rs256(keys.privateKey))]
    ]
    const ids: string[] = []
    for (const [i, [name, password]] of cases.entries()) {
      const clientId = `auth-rs-bad-${i}`
      ids.push(clientId)
      const code = await connectRefused(h.wsUrl, { clientId, password })
      assert.ok(REFUSED.includes(code), `${name}: CONNACK ${code}`)
    }
    await assertNoSession(h, 'mallory', ids)
  })

  test('POST /v1/tokens without JWT_PRIVATE_KEY answers 501 token-signing-unavailable', async () => {
    const res = await h.api('/v1/tokens', { body: { user: 'rita' } })
    assert.equal(res.status, 501)
    assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/)
    assert.equal(res.body.code, 'token-signing-unavailable')
    assert.match(res.body.detail, /JWT_PRIVATE_KEY/)
  })
})

describe('ES256 server (EC P-256 JWT_PUBLIC_KEY)', () => {
  let h: TestHerald
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  before(async () => {
    h = await startTestHerald({
      env: { JWT_SECRET: '', JWT_PUBLIC_KEY: publicKey.export({ type: 'spki', format: 'pem' }).toString() }
    })
  })
  after(async () => { await h.stop() })

  test('a valid ES256 token connects; RS256, HS256 and alg none are refused', async () => {
    const exp = nowSeconds() + 600
    const device = await connectDevice(h.wsUrl, {
      clientId: 'auth-es256', password: jwt.sign({ sub: 'elena', exp }, privateKey, { algorithm: 'ES256' })
    })
    assert.ok(device.client.connected)
    await device.close()
    const rsa = rsaKeys()
    const bad: Array<[string, string]> = [
      ['RS256', jwt.sign({ sub: 'mallory', exp }, rsa.privateKey, { algorithm: 'RS256' })],
      ['HS256 with the public key PEM',
        craftJwt({ alg: 'HS256', typ: 'JWT' }, { sub: 'mallory', exp },
          hs256(publicKey.export({ type: 'spki', format: 'pem' })))],
      ['alg none', craftJwt({ alg: 'none', typ: 'JWT' }, { sub: 'mallory', exp })],
      ['ES256 by another key',
        jwt.sign({ sub: 'mallory', exp }, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
          { algorithm: 'ES256' })]
    ]
    for (const [i, [name, password]] of bad.entries()) {
      const code = await connectRefused(h.wsUrl, { clientId: `auth-es-bad-${i}`, password })
      assert.ok(REFUSED.includes(code), `${name}: CONNACK ${code}`)
    }
    await assertNoSession(h, 'mallory', bad.map((_, i) => `auth-es-bad-${i}`))
    assert.equal((await h.api('/v1/users/elena/devices')).body.length, 1)
  })
})

function rs256 (privateKey: string | KeyObject) {
  return (input: string): Buffer => createSign('RSA-SHA256').update(input).sign(privateKey)
}
