/** Standard Webhooks signatures: the published test vector, verification (rotation lists, stale and tampered
 *  messages, malformed headers) and the `whsec_` secret format. */
import { describe, expect, it } from "vitest"
import * as WebhookSignature from "../src/webhook-signature.ts"

// The Standard Webhooks reference test vector (the same in every reference library).
const vector = {
  secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
  id: "msg_p5jXN8AQM9LWM0D4loKWxJek",
  timestamp: 1614265330,
  body: '{"test": 2432232314}',
  signature: "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
}

const key = () => {
  const k = WebhookSignature.parseSecret(vector.secret)
  if (!Buffer.isBuffer(k)) throw new Error(k.problem)
  return k
}

describe("WebhookSignature", () => {
  it("reproduces the published test vector", () => {
    expect(WebhookSignature.sign(key(), vector.id, vector.timestamp, vector.body)).toBe(vector.signature)
    expect(WebhookSignature.headers(key(), vector.id, vector.timestamp, vector.body)).toEqual({
      "webhook-id": vector.id,
      "webhook-timestamp": "1614265330",
      "webhook-signature": vector.signature
    })
  })

  it("verifies a signature among several, and refuses a tampered, stale or malformed one", () => {
    const headers = {
      "webhook-id": vector.id,
      "webhook-timestamp": String(vector.timestamp),
      "webhook-signature": `v1,bm9wZQ== ${vector.signature}`
    }
    expect(WebhookSignature.verify(key(), headers, vector.body, vector.timestamp + 10)).toBe("ok")
    expect(WebhookSignature.verify(key(), headers, `${vector.body} `, vector.timestamp)).toBe("bad_signature")
    expect(
      WebhookSignature.verify(key(), { ...headers, "webhook-id": "msg_other" }, vector.body, vector.timestamp)
    ).toBe("bad_signature")
    expect(WebhookSignature.verify(key(), headers, vector.body, vector.timestamp + 301)).toBe("stale")
    expect(WebhookSignature.verify(key(), headers, vector.body, vector.timestamp - 301)).toBe("stale")
    expect(WebhookSignature.verify(key(), { ...headers, "webhook-timestamp": "soon" }, vector.body, 0)).toBe(
      "malformed"
    )
    expect(WebhookSignature.verify(key(), { "webhook-id": vector.id }, vector.body, vector.timestamp)).toBe("malformed")
    expect(
      WebhookSignature.verify(key(), { ...headers, "webhook-signature": "v1,ü" }, vector.body, vector.timestamp)
    ).toBe("bad_signature")
  })

  it("takes whsec_ secrets of 24 to 64 bytes and says what is wrong with others, without quoting them", () => {
    expect(Buffer.isBuffer(WebhookSignature.parseSecret(`whsec_${Buffer.alloc(64, 1).toString("base64")}`))).toBe(true)
    const problems = [
      "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
      "whsec_not base64!",
      `whsec_${Buffer.alloc(16, 1).toString("base64")}`,
      `whsec_${Buffer.alloc(65, 1).toString("base64")}`
    ].map((s) => {
      const r = WebhookSignature.parseSecret(s)
      if (Buffer.isBuffer(r)) throw new Error(`accepted ${s}`)
      expect(r.problem).not.toContain(s.slice(6, 20))
      return r.problem
    })
    expect(problems).toEqual([
      "a webhook secret starts with whsec_ (then base64 of 24 to 64 bytes)",
      "what follows whsec_ is not base64",
      "a webhook secret holds 24 to 64 bytes, this one 16",
      "a webhook secret holds 24 to 64 bytes, this one 65"
    ])
  })
})
