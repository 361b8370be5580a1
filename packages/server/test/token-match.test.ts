/** The token fast path's cache of GET path matches (token-fast-path.ts `match`): a repeat of a path is answered
 *  from it, and at its bound of 1024 paths the least recently used one goes, not the oldest. */
import { IncomingMessage } from "node:http"
import { Socket } from "node:net"
import { randomBytes } from "node:crypto"
import { expect, it } from "vitest"
import * as TokenFastPath from "../src/token-fast-path.ts"

const get = (path: string) => {
  const req = new IncomingMessage(new Socket())
  req.method = "GET"
  req.url = `${path}?page=1`
  return TokenFastPath.match(req)
}

it("at the bound, a path used again stays and the least recently used one goes", () => {
  const run = randomBytes(4).toString("hex")
  const path = (i: number) => `/v1/connections/t-${run}-${i}/token`
  // 1024 paths of this test's own fill the cache (whatever earlier requests left in it goes first).
  const first = Array.from({ length: 1024 }, (_, i) => get(path(i)))
  expect(first[0]?.params["name"]).toBe(`t-${run}-0`)
  expect(get(path(0))).toBe(first[0]) // a hit: the same match, and now the most recently used
  get(path(1024)) // one more path: the least recently used (path 1) goes
  expect(get(path(0))).toBe(first[0])
  expect(get(path(2))).toBe(first[2])
  const again = get(path(1))
  expect(again).not.toBe(first[1]) // matched anew
  expect(again?.params["name"]).toBe(`t-${run}-1`)
})
