import { assert, describe, it } from "@effect/vitest"
import { checkExposition, parseFamilies } from "./PromText.ts"

/** The judge of `/metrics` must itself reject broken text, or its passing means nothing. */
describe("checkExposition", () => {
  const good = [
    "# HELP a_total A counter.",
    "# TYPE a_total counter",
    'a_total{topic="x \\"y\\" \\\\ \\n"} 3',
    "# TYPE h_seconds histogram",
    'h_seconds_bucket{le="0.1"} 1',
    'h_seconds_bucket{le="+Inf"} 2',
    "h_seconds_sum 0.3",
    "h_seconds_count 2",
    "# TYPE g gauge",
    "g -1.5e-3",
    "g2 NaN",
    ""
  ].join("\n")

  it("accepts valid text", () => {
    const e = checkExposition(good)
    assert.deepStrictEqual(e.problems, [])
    assert.strictEqual(e.series.find((s) => s.name === "a_total")?.labels["topic"], "x \"y\" \\ \n")
    assert.strictEqual(parseFamilies(good).length, 4)
  })

  const broken: Record<string, string> = {
    "unescaped quote": 'a_total{topic="x"y"} 1\n',
    "bad name": "1abc 1\n",
    "bad value": "g 1,5\n",
    "no value": "g\n",
    "unknown type": "# TYPE g meter\ng 1\n",
    "type after samples": "g 1\n# TYPE g gauge\n",
    "duplicate series": "g 1\ng 2\n",
    "split family": "g 1\nh 1\ng{a=\"b\"} 1\n",
    "negative counter": "# TYPE c_total counter\nc_total -1\n",
    "buckets not cumulative": '# TYPE h histogram\nh_bucket{le="1"} 3\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 2\n',
    "+Inf differs from count": '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 3\n',
    "no trailing newline": "g 1"
  }
  for (const [what, text] of Object.entries(broken)) {
    it(`rejects: ${what}`, () => {
      assert.isNotEmpty(checkExposition(text).problems)
    })
  }
})
