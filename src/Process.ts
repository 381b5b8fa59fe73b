/**
 * How our programs end: Effect's `runMain` (signals interrupt the main fiber, every
 * finalizer runs), with SIGINT/SIGTERM counted as a clean stop (exit 0, SPEC §8), a usage
 * error or a refused setting as exit 2, and any other failure as exit 1 with its message on
 * one line.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Config, Effect, Exit } from "effect"
import { describeConfigError } from "./config.ts"

/** Wrong usage: printed as one line, exit code 2. */
export class UsageError extends Error {
  override readonly name = "UsageError"
}

const message = (e: unknown): string =>
  e instanceof Error ? e.message : typeof e === "object" && e !== null && "message" in e ? String((e as { message: unknown }).message) : String(e)

/** An error's message on one line. */
export const describeError = (e: unknown): string => message(e).replace(/\s*\n\s*/g, " ").trim()

export const runMain = <A, E>(program: Effect.Effect<A, E>, name = "insights"): void =>
  NodeRuntime.runMain(program, {
    disableErrorReporting: true,
    teardown: (exit, onExit) => {
      if (Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause)) return onExit(0)
      const error = Cause.squash(exit.cause)
      if (error instanceof Config.ConfigError) {
        process.stderr.write(`${name}: ${describeConfigError(error)}\n`)
        return onExit(2)
      }
      process.stderr.write(`${name}: ${describeError(error)}\n`)
      onExit(error instanceof UsageError ? 2 : 1)
    }
  })
