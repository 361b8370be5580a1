/** The proxy baseline (undici-proxy.ts) in its own process: forwards to $BENCH_UPSTREAM with
 *  `Authorization: Bearer $BENCH_TOKEN`. */
import { serve } from "./child.ts"
import { startUndiciProxy } from "./undici-proxy.ts"

const proxy = await startUndiciProxy(
  process.env["BENCH_UPSTREAM"] ?? "http://127.0.0.1:1",
  process.env["BENCH_TOKEN"] ?? "x"
)
serve({ url: proxy.url }, {}, proxy.close)
