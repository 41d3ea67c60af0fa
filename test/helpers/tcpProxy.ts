import net from 'node:net'

/**
 * A TCP proxy on 127.0.0.1 (port 0) to `target`, for simulating a database outage:
 * `cut()` destroys every open connection and refuses new ones (each is closed at once) until
 * `restore()`. `blackhole()` is a network partition instead: connections stay open but nothing
 * passes either way, and new ones are accepted and never answered, until `restore()` lets the
 * held bytes through. `stall()` is a database slow to take connections: the open ones are
 * closed, new ones are held unanswered, and `restore()` passes them on.
 */
export interface TcpProxy {
  port: number
  /** connections open through the proxy right now */
  readonly connections: number
  cut: () => void
  blackhole: () => void
  stall: () => void
  /** connections held unanswered by blackhole() or stall() */
  readonly held: number
  restore: () => void
  close: () => Promise<void>
}

export async function startTcpProxy (target: { host: string, port: number }): Promise<TcpProxy> {
  const pairs = new Set<{ client: net.Socket, upstream: net.Socket }>()
  let isCut = false
  let isHole = false
  let isStalled = false
  const held = new Set<net.Socket>()
  const server = net.createServer(client => {
    if (isCut) {
      client.destroy()
      return
    }
    if (isHole || isStalled) {
      client.pause()
      client.on('error', () => {})
      held.add(client)
      return
    }
    forward(client)
  })
  const forward = (client: net.Socket): void => {
    const upstream = net.connect(target.port, target.host)
    const pair = { client, upstream }
    pairs.add(pair)
    const drop = (): void => {
      pairs.delete(pair)
      client.destroy()
      upstream.destroy()
    }
    client.on('error', drop)
    upstream.on('error', drop)
    client.on('close', drop)
    upstream.on('close', drop)
    client.pipe(upstream)
    upstream.pipe(client)
  }
  const pauseAll = (pause: boolean): void => {
    for (const { client, upstream } of pairs) {
      if (pause) {
        client.unpipe(upstream); upstream.unpipe(client); client.pause(); upstream.pause()
      } else {
        client.pipe(upstream); upstream.pipe(client)
      }
    }
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const port = (server.address() as net.AddressInfo).port
  const destroyAll = (): void => {
    for (const { client, upstream } of [...pairs]) {
      client.destroy()
      upstream.destroy()
    }
    pairs.clear()
  }
  return {
    port,
    get connections () { return pairs.size },
    get held () { return held.size },
    cut: () => {
      isCut = true
      destroyAll()
    },
    blackhole: () => {
      isHole = true
      pauseAll(true)
    },
    stall: () => {
      isStalled = true
      destroyAll()
    },
    restore: () => {
      isCut = false
      if (isStalled) {
        isStalled = false
        for (const s of held) if (!s.destroyed) forward(s)
        held.clear()
      }
      if (isHole) {
        isHole = false
        pauseAll(false)
        // connections opened during the partition were never answered: their peers gave up
        for (const s of held) s.destroy()
        held.clear()
      }
    },
    close: async () => {
      for (const s of held) s.destroy()
      held.clear()
      destroyAll()
      await new Promise<void>(resolve => server.close(() => resolve()))
    }
  }
}

/** A proxy in front of the Postgres of `databaseUrl`, and that URL through it. */
export async function proxyDatabase (databaseUrl: string): Promise<{ proxy: TcpProxy, url: string }> {
  const target = new URL(databaseUrl)
  const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) })
  const url = new URL(databaseUrl)
  url.hostname = '127.0.0.1'
  url.port = String(proxy.port)
  return { proxy, url: url.toString() }
}
