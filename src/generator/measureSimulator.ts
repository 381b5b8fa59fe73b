/**
 * Measures how many messages per second the simulator produces on this machine,
 * alone and with each value encoded to UTF-8 bytes (as a Kafka producer or a file
 * writer must: the values are concatenated strings, and encoding flattens them).
 * Also prints the mix it produced.
 *
 *     node_modules/.bin/node src/generator/measureSimulator.ts [messages] [engine|flink]
 *
 * @since 0.1.0
 */
import { performance } from "node:perf_hooks"
import { makeProducts, makeUsers } from "./Catalog.ts"
import { makeSimulator } from "./Shoppers.ts"

const count = Number(process.argv[2] ?? 2_000_000)
const format = process.argv[3] === "flink" ? "flink" : "engine"
const users = makeUsers(1, 1000)
const products = makeProducts(2, 200)
const start = Date.UTC(2024, 0, 1)

const measure = (encode: boolean): string => {
  const simulator = makeSimulator({ seed: 42, users, products, format })
  // warm up so the JIT has compiled the hot path before timing
  for (let i = 0; i < 100_000; i++) simulator.next(start + i)
  let clicks = 0
  let bytes = 0
  const began = performance.now()
  for (let i = 0; i < count; i++) {
    const message = simulator.next(start + i)
    if (message.topic === "clicks") clicks++
    bytes += encode ? Buffer.from(message.value).length : message.value.length
  }
  const seconds = (performance.now() - began) / 1000
  return `${format}${encode ? " + UTF-8 encoding" : ""}: ${Math.round(count / seconds).toLocaleString("en")} msgs/s ` +
    `(${count} in ${seconds.toFixed(2)} s; ${(clicks / Math.max(1, count - clicks)).toFixed(2)} clicks per checkout; ` +
    `${Math.round(bytes / count)} bytes/message)`
}

console.log(measure(false))
console.log(measure(true))
