/** `insights load-dims --users FILE --products FILE` */
import { Console, Effect } from "effect"
import * as LoadDimensions from "../jobs/LoadDimensions.ts"

export const loadDims = (files: { readonly users?: string | undefined; readonly products?: string | undefined }) =>
  Effect.gen(function*() {
    const reports = []
    if (files.users !== undefined) reports.push(yield* LoadDimensions.loadUsers(files.users))
    if (files.products !== undefined) reports.push(yield* LoadDimensions.loadProducts(files.products))
    for (const r of reports) {
      for (const p of r.problems) yield* Console.error(`warning: ${p}`)
      yield* Console.error(`${r.file}: ${r.rows} rows read, ${r.upserted} inserted or changed`)
    }
    return reports
  })
