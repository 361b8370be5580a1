/** The part of autocannon's API the benches use (the package ships no types). */
declare module "autocannon" {
  import type { EventEmitter } from "node:events"
  interface Options {
    url: string
    connections?: number
    duration?: number
    amount?: number
    pipelining?: number
    headers?: Record<string, string>
    method?: string
    timeout?: number
    /** Requests cycled per connection; `setupRequest` may rewrite each one (e.g. a random path). */
    requests?: ReadonlyArray<{ setupRequest?: (req: Record<string, unknown>) => Record<string, unknown> }>
  }
  interface Result {
    duration: number
    errors: number
    timeouts: number
    non2xx: number
    resets: number
    "2xx": number
    statusCodeStats: Record<string, { count: number }>
    latency: { p50: number; p99: number; mean: number; max: number }
    requests: { total: number; average: number; sent: number }
  }
  interface Instance extends EventEmitter, PromiseLike<Result> {
    stop(): void
  }
  function autocannon(opts: Options): Instance
  export default autocannon
}
