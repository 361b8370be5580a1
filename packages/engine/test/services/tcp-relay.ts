/** A TCP relay on 127.0.0.1 in front of a real server, for the tests that need a connection broken in a way no
 *  socket tells its client: `sever` closes every relayed connection on the server's side only, and leaves the
 *  client's side open and silent (what a NAT or load balancer that drops an idle flow does). Connections made
 *  after it are relayed as before. */
import { createServer, connect, type Socket } from "node:net"

export interface TcpRelay {
  readonly port: number
  readonly sever: () => void
  readonly close: () => Promise<void>
}

export const tcpRelay = (host: string, port: number): Promise<TcpRelay> =>
  new Promise((resolve, reject) => {
    const pairs = new Set<{ readonly down: Socket; readonly up: Socket }>()
    const severed = new Set<Socket>()
    const server = createServer((down) => {
      const up = connect(port, host)
      const pair = { down, up }
      pairs.add(pair)
      down.pipe(up)
      up.pipe(down)
      const end = () => {
        pairs.delete(pair)
        down.destroy()
        up.destroy()
      }
      down.on("error", end).on("close", end)
      up.on("error", end).on("close", end)
    })
    server.on("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      if (address === null || typeof address === "string") return reject(new Error("relay: no port"))
      resolve({
        port: address.port,
        sever: () => {
          for (const pair of pairs) {
            pairs.delete(pair)
            const { down, up } = pair
            up.unpipe(down)
            down.unpipe(up)
            up.removeAllListeners("close")
              .removeAllListeners("error")
              .on("error", () => undefined)
            up.destroy()
            // The client's side: open, whatever it sends read and dropped, never answered.
            down.removeAllListeners("close").removeAllListeners("error").removeAllListeners("data")
            down.on("error", () => undefined).on("data", () => undefined)
            severed.add(down)
          }
        },
        close: () =>
          new Promise<void>((done) => {
            for (const { down, up } of pairs) {
              down.destroy()
              up.destroy()
            }
            for (const down of severed) down.destroy()
            server.close(() => done())
          })
      })
    })
  })
