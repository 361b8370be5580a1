/** The sandbox's server clock: the real clock plus an adjustable skew, used for Date headers and token times. */

export class Clock {
  #skewMs: number

  constructor(skewMs = 0) {
    this.#skewMs = 0
    this.setSkew(skewMs)
  }

  setSkew(ms: number): void {
    if (!Number.isFinite(ms))
      throw new RangeError(`clock skew must be a finite number of milliseconds, got ${String(ms)}`)
    this.#skewMs = ms
  }

  nowMs(): number {
    return Date.now() + this.#skewMs
  }

  /** Whole seconds since the epoch, as JWT iat/exp use. */
  nowSec(): number {
    return Math.floor(this.nowMs() / 1000)
  }

  /** RFC 9110 IMF-fixdate for the Date header. */
  httpDate(): string {
    return new Date(this.nowMs()).toUTCString()
  }
}
