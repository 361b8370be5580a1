/** The loopback rule behind "plain http is safe here" (checkUrl, API calls) and the server's keyless bind check. */
import { describe, expect, it } from "vitest"
import { checkUrl, isLoopback } from "../src/connection.ts"

describe("isLoopback", () => {
  it("is localhost, 127.0.0.0/8 and ::1 in any spelling, bracketed or not", () => {
    for (const host of [
      "localhost",
      "LocalHost",
      "127.0.0.1",
      "127.8.9.10",
      "::1",
      "[::1]",
      "0:0:0:0:0:0:0:1",
      "[::ffff:127.0.0.1]"
    ])
      expect(isLoopback(host), host).toBe(true)
  })

  it("is nothing else, however close it looks", () => {
    for (const host of [
      "128.0.0.1",
      "256.0.0.1",
      "127.0.0.1.nip.io",
      "localhost.example.com",
      "::2",
      "[::ffff:10.0.0.1]",
      "0.0.0.0",
      "::",
      "example.com",
      ""
    ])
      expect(isLoopback(host), host).toBe(false)
  })

  it("is the rule checkUrl applies to plain http", () => {
    expect(checkUrl("http://[::1]:8080/x", false)).toBeUndefined()
    expect(checkUrl("http://127.0.0.2/x", false)).toBeUndefined()
    expect(checkUrl("http://10.0.0.1/x", false)?.message).toMatch(/plain http:\/\/ to 10\.0\.0\.1/)
    expect(checkUrl("http://10.0.0.1/x", true)).toBeUndefined()
  })
})
