/**
 * A TCP proxy a test can cut and restore: the daemon talks to PostgreSQL through it, so the
 * test can make the database unreachable (every open connection reset, new ones refused)
 * and bring it back on the same port.
 */
import * as net from "node:net"

export interface TcpProxy {
  readonly port: number
  /** reset every connection and stop listening */
  readonly cut: () => Promise<void>
  /** listen again on the same port */
  readonly restore: () => Promise<void>
  readonly close: () => Promise<void>
}

export const startTcpProxy = async (target: { readonly host: string; readonly port: number }): Promise<TcpProxy> => {
  const sockets = new Set<net.Socket>()
  const track = (s: net.Socket) => {
    sockets.add(s)
    s.once("close", () => sockets.delete(s))
  }
  const makeServer = () =>
    net.createServer((client) => {
      const upstream = net.connect(target)
      track(client)
      track(upstream)
      client.pipe(upstream)
      upstream.pipe(client)
      client.on("error", () => upstream.destroy())
      upstream.on("error", () => client.destroy())
      client.on("close", () => upstream.destroy())
      upstream.on("close", () => client.destroy())
    })
  const listen = (server: net.Server, port: number) =>
    new Promise<number>((resolve, reject) => {
      server.once("error", reject)
      server.listen(port, "127.0.0.1", () => resolve((server.address() as net.AddressInfo).port))
    })
  let server: net.Server | undefined = makeServer()
  const port = await listen(server, 0)
  const stop = async () => {
    const s = server
    server = undefined
    for (const socket of sockets) socket.resetAndDestroy()
    if (s !== undefined) await new Promise<void>((resolve) => s.close(() => resolve()))
  }
  return {
    port,
    cut: stop,
    restore: async () => {
      if (server !== undefined) return
      server = makeServer()
      await listen(server, port)
    },
    close: stop
  }
}
