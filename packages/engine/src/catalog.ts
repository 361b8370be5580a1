/** The set of provider manifests a process knows: the bundled ones (providers/ in this repository) plus any
 *  directories a config names. A user manifest with a bundled id replaces the bundled one; two user manifests
 *  with one id are an error. */
import * as Effect from "effect/Effect"
import { readdir } from "node:fs/promises"
import { providersDir } from "./assets.ts"
import { join } from "node:path"
import { ManifestInvalid } from "./manifest-error.ts"
import * as Manifest from "./manifest.ts"
import type { Problem } from "./problem.ts"

export const bundledDir: string = providersDir

export interface Catalog {
  readonly manifests: ReadonlyMap<string, Manifest.Manifest>
  readonly bundled: ReadonlySet<string>
}

const manifestFiles = (dir: string): Effect.Effect<ReadonlyArray<string>, ManifestInvalid> =>
  Effect.tryPromise({
    try: async () =>
      (await readdir(dir))
        .filter((f) => /\.ya?ml$/.test(f))
        .sort()
        .map((f) => join(dir, f)),
    catch: (e) =>
      new ManifestInvalid({
        problems: [
          {
            severity: "error",
            file: dir,
            line: 1,
            col: 1,
            path: "",
            message: `cannot read provider directory: ${(e as NodeJS.ErrnoException).code ?? String(e)}`,
            hint: "check the providers: entry in your config"
          }
        ]
      })
  })

/** Loads every manifest in the given files, collecting all problems before failing. */
export const loadFiles = (
  files: ReadonlyArray<string>
): Effect.Effect<ReadonlyArray<Manifest.Manifest>, ManifestInvalid> =>
  Effect.gen(function* () {
    const results = yield* Effect.forEach(files, (f) => Effect.result(Manifest.load(f)), { concurrency: 8 })
    const problems = results.flatMap((r) => (r._tag === "Failure" ? r.failure.problems : []))
    if (problems.length > 0) return yield* new ManifestInvalid({ problems })
    return results.flatMap((r) => (r._tag === "Success" ? [r.success] : []))
  })

let bundledCache: Effect.Effect<ReadonlyArray<Manifest.Manifest>, ManifestInvalid> | undefined
/** The bundled manifests, loaded once per process. */
export const bundled = (): Effect.Effect<ReadonlyArray<Manifest.Manifest>, ManifestInvalid> =>
  (bundledCache ??= Effect.runSync(Effect.cached(manifestFiles(bundledDir).pipe(Effect.flatMap(loadFiles)))))

export const load = (extraDirs: ReadonlyArray<string> = []): Effect.Effect<Catalog, ManifestInvalid> =>
  Effect.gen(function* () {
    const base = yield* bundled()
    const manifests = new Map(base.map((m) => [m.id, m] as const))
    const bundledIds = new Set(manifests.keys())
    const files = (yield* Effect.forEach(extraDirs, manifestFiles)).flat()
    const extra = yield* loadFiles(files)
    const seen = new Map<string, string>()
    const problems: Problem[] = []
    for (const m of extra) {
      const first = seen.get(m.id)
      if (first)
        problems.push({
          severity: "error",
          file: m.file,
          line: 1,
          col: 1,
          path: "id",
          message: `duplicate provider id "${m.id}" (also in ${first})`,
          hint: "provider ids must be unique across provider directories"
        })
      seen.set(m.id, m.file)
      manifests.set(m.id, m)
    }
    if (problems.length > 0) return yield* new ManifestInvalid({ problems })
    return { manifests, bundled: bundledIds }
  })
