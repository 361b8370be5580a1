/** Whether the headless Chromium the browser tests drive is installed (Debian's `chromium`, /usr/bin/chromium, run
 *  through playwright-core), and the SKIP rule: without it a browser suite is skipped with a clear line, except on
 *  CI (`CI=true`), where it fails. `.ci/run` installs it with apt-get when it is missing. */
import { existsSync } from "node:fs"
import { chromium, type Browser } from "playwright-core"
import { describe, it } from "vitest"

export const chromiumPath = process.env["CHROMIUM_PATH"] || "/usr/bin/chromium"

export const chromiumInstalled: boolean = existsSync(chromiumPath)

const flags = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--no-first-run",
  "--disable-dev-shm-usage"
]

export const launch = (): Promise<Browser> =>
  chromium.launch({ executablePath: chromiumPath, headless: true, args: flags, timeout: 30_000 })

/** `describe` when Chromium is there; otherwise a printed SKIP line (or, on CI, one failing test saying why). */
export const describeBrowser = (name: string, body: () => void): void => {
  if (chromiumInstalled) {
    describe(name, body)
    return
  }
  const why = `no Chromium at ${chromiumPath} (apt-get install chromium, or set CHROMIUM_PATH)`
  if (process.env["CI"] === "true") {
    describe(name, () => {
      it("needs Chromium on CI", () => {
        throw new Error(`browser tests cannot run: ${why}`)
      })
    })
    return
  }
  console.log(`SKIP browser tests (${name}): ${why}`)
  describe.skip(name, body)
}
