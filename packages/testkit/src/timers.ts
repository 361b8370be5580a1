/** Cancellable sleeps, so close() can end in-flight delays at once instead of waiting for their timers. */

export class Sleeper {
  readonly #pending = new Map<NodeJS.Timeout, () => void>()

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(
        () => {
          this.#pending.delete(timer)
          resolve()
        },
        Math.min(Math.max(0, ms), 2_147_483_647)
      )
      this.#pending.set(timer, resolve)
    })
  }

  /** Clears every pending timer and resolves its sleep immediately. */
  cancelAll(): void {
    for (const [timer, resolve] of this.#pending) {
      clearTimeout(timer)
      resolve()
    }
    this.#pending.clear()
  }
}
