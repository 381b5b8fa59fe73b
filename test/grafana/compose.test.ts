/**
 * docker-compose.yaml and the Dockerfile, checked without a Docker engine: the services and
 * their images, the ports, that every bind mount exists in the repository, that the
 * settings agree between services (database URL, brokers, passwords, the provisioning's
 * variables), and that the image copies what exists and is not ignored.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { grafanaDir, readYaml, repoRoot } from "./support.ts"

const compose = readYaml(path.join(repoRoot, "docker-compose.yaml"))
const services: Record<string, any> = compose.services

/** Compose's variable interpolation (`$$`, `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`). */
const interpolate = (value: unknown, env: Record<string, string | undefined> = {}): string =>
  String(value).replace(/\$\$|\$\{(\w+)(?:(:?-)([^}]*))?\}|\$(\w+)/g, (match, braced, op, fallback, bare) => {
    if (match === "$$") return "$"
    const name = braced ?? bare
    const set = env[name]
    if (op === ":-") return set === undefined || set === "" ? fallback : set
    if (op === "-") return set === undefined ? fallback : set
    return set ?? ""
  })

/** A service's environment as a map, interpolated with an empty shell environment. */
const envOf = (service: any): Record<string, string> => {
  const env = service.environment ?? {}
  const entries: Array<[string, string]> = Array.isArray(env)
    ? env.map((line: string) => {
      const i = line.indexOf("=")
      return [line.slice(0, i), line.slice(i + 1)] as [string, string]
    })
    : Object.entries(env).map(([k, v]) => [k, v === null ? "" : String(v)])
  return Object.fromEntries(entries.map(([k, v]) => [k, interpolate(v)]))
}

const portsOf = (service: any): ReadonlyArray<string> => (service.ports ?? []).map(String)

/** Bind mounts as [host path relative to the repo, container path]. */
const bindMounts = (service: any): Array<[string, string]> =>
  (service.volumes ?? [])
    .map((v: any) => (typeof v === "string" ? v.split(":") : [v.source, v.target]))
    .filter(([source]: [string]) => source.startsWith(".") || source.startsWith("/"))
    .map(([source, target]: [string, string]) => [path.normalize(source), target])

/** The host file behind a container path, through the service's bind mounts. */
const hostPath = (service: any, containerPath: string): string | undefined => {
  for (const [source, target] of bindMounts(service)) {
    if (containerPath === target || containerPath.startsWith(`${target}/`)) {
      return path.join(repoRoot, source, containerPath.slice(target.length))
    }
  }
  return undefined
}

const commandOf = (service: any): ReadonlyArray<string> =>
  Array.isArray(service.command) ? service.command.map(String) : String(service.command).split(/\s+/)

describe("docker-compose.yaml", () => {
  it("has the whole stack, with pinned images", () => {
    for (const name of ["kafka", "postgres", "grafana", "engine", "generator"]) expect(Object.keys(services)).toContain(name)
    expect(services["kafka"].image).toBe("apache/kafka:3.9.1")
    for (const [name, service] of Object.entries(services)) {
      expect(service.image ?? service.build, `${name} has an image or a build`).toBeDefined()
      if (service.image && !service.build) {
        expect(service.image, `${name}: pinned tag`).toMatch(/:[\w.-]+$/)
        expect(service.image, name).not.toMatch(/:latest$/)
      }
    }
  })

  it("runs Kafka in KRaft mode, single node, reachable as kafka:9092", () => {
    const env = envOf(services["kafka"])
    expect(env["KAFKA_PROCESS_ROLES"]!.split(",").sort()).toEqual(["broker", "controller"])
    expect(Object.keys(env).some((k) => /ZOOKEEPER/.test(k))).toBe(false)
    const [voter] = env["KAFKA_CONTROLLER_QUORUM_VOTERS"]!.split(",")
    const [, nodeId, host, port] = /^(\d+)@([\w.-]+):(\d+)$/.exec(voter!)!
    expect(nodeId).toBe(env["KAFKA_NODE_ID"])
    expect(host).toBe("kafka")
    const listeners = Object.fromEntries(
      env["KAFKA_LISTENERS"]!.split(",").map((l) => /^(\w+):\/\/[^:]*:(\d+)$/.exec(l)!.slice(1, 3) as [string, string])
    )
    expect(listeners[env["KAFKA_CONTROLLER_LISTENER_NAMES"]!]).toBe(port)
    const protocols = Object.fromEntries(env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"]!.split(",").map((p) => p.split(":")))
    for (const name of Object.keys(listeners)) expect(protocols[name], name).toBeDefined()
    const advertised = env["KAFKA_ADVERTISED_LISTENERS"]!.split(",")
    expect(advertised).toContain("PLAINTEXT://kafka:9092")
    expect(listeners["PLAINTEXT"]).toBe("9092")
    // KRaft formats its storage with this id: base64url of 16 bytes
    expect(Buffer.from(env["CLUSTER_ID"]!, "base64url")).toHaveLength(16)
    const init = commandOf(services["kafka-init"]).join(" ")
    for (const topic of ["clicks", "checkouts"]) expect(init).toContain(topic)
  })

  it("points the engine at the postgres and kafka services, on port 8081", () => {
    const engine = envOf(services["engine"])
    const pg = envOf(services["postgres"])
    const db = new URL(engine["DATABASE_URL"]!)
    expect(db.protocol).toMatch(/^postgres(ql)?:$/)
    expect(db.hostname).toBe("postgres")
    expect(db.port || "5432").toBe("5432")
    expect(db.pathname).toBe(`/${pg["POSTGRES_DB"]}`)
    expect(decodeURIComponent(db.username)).toBe(pg["POSTGRES_USER"])
    expect(decodeURIComponent(db.password)).toBe(pg["POSTGRES_PASSWORD"])
    for (const broker of engine["KAFKA_BROKERS"]!.split(",")) {
      const [host] = broker.split(":")
      expect(Object.keys(services)).toContain(host)
      expect(envOf(services[host!])["KAFKA_ADVERTISED_LISTENERS"]).toContain(`://${broker}`)
    }
    expect(engine["HTTP_PORT"]).toBe("8081")
    expect(portsOf(services["engine"])).toContain("8081:8081")
    expect(services["engine"].build === "." || services["engine"].build?.context === ".").toBe(true)
  })

  it("runs the generator from the engine's image with the agreed flags", () => {
    const generator = services["generator"]
    expect(generator.image).toBe(services["engine"].image)
    expect(commandOf(generator)).toEqual(["node", "dist/cli.js", "generate", "--to", "kafka", "--rate", "200", "--seed", "1"])
    expect(envOf(generator)["KAFKA_BROKERS"]).toBe(envOf(services["engine"])["KAFKA_BROKERS"])
  })

  it("serves Grafana on :3000 with the repository's provisioning, and the dashboard as home", () => {
    const grafana = services["grafana"]
    expect(portsOf(grafana)).toContain("3000:3000")
    for (const [name, service] of Object.entries(services)) {
      for (const [source] of bindMounts(service)) {
        expect(existsSync(path.join(repoRoot, source)), `${name} mounts ${source}, which exists`).toBe(true)
      }
      for (const volume of service.volumes ?? []) {
        const source = typeof volume === "string" ? volume.split(":")[0] : volume.source
        if (!source.startsWith(".") && !source.startsWith("/")) expect(Object.keys(compose.volumes ?? {}), name).toContain(source)
      }
    }
    const provisioning = hostPath(grafana, "/etc/grafana/provisioning")
    expect(provisioning && path.resolve(provisioning)).toBe(path.join(grafanaDir, "provisioning"))

    const env = envOf(grafana)
    const home = hostPath(grafana, env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]!)
    expect(home && existsSync(home)).toBe(true)

    // the dashboard provider's folder is mounted and holds the dashboards
    for (const file of readdirSync(path.join(grafanaDir, "provisioning/dashboards")).filter((f) => /\.ya?ml$/.test(f))) {
      for (const provider of readYaml(path.join(grafanaDir, "provisioning/dashboards", file)).providers) {
        const dir = hostPath(grafana, provider.options.path)
        expect(dir && statSync(dir).isDirectory(), provider.options.path).toBe(true)
        expect(readdirSync(dir!).some((f) => f.endsWith(".json"))).toBe(true)
      }
    }

    // every ${VAR} of the datasource provisioning is set for Grafana, and the password is the engine's
    const datasourceText = readFileSync(path.join(grafanaDir, "provisioning/datasources/insights.yaml"), "utf8")
    const used = [...datasourceText.replace(/^\s*#.*$/gm, "").matchAll(/\$\{?(\w+)\}?/g)].map((m) => m[1]!)
    expect(used.length).toBeGreaterThan(0)
    for (const name of used) expect(env[name], `Grafana's ${name}`).toBeTruthy()
    expect(env["GRAFANA_DB_PASSWORD"]).toBe(envOf(services["engine"])["GRAFANA_DB_PASSWORD"])
    const [host, port] = env["INSIGHTS_DB_HOST"]!.split(":")
    expect(host).toBe("postgres")
    expect(port).toBe("5432")
    expect(env["INSIGHTS_DB_NAME"]).toBe(envOf(services["postgres"])["POSTGRES_DB"])
  })

  it("only depends on services that exist, with conditions compose knows", () => {
    for (const [name, service] of Object.entries(services)) {
      const deps = service.depends_on ?? []
      const entries: Array<[string, any]> = Array.isArray(deps) ? deps.map((d: string) => [d, {}]) : Object.entries(deps)
      for (const [dep, spec] of entries) {
        expect(Object.keys(services), `${name} depends on ${dep}`).toContain(dep)
        if (spec?.condition) {
          expect(["service_started", "service_healthy", "service_completed_successfully"]).toContain(spec.condition)
          if (spec.condition === "service_healthy") expect(services[dep].healthcheck, `${dep} has a healthcheck`).toBeDefined()
        }
      }
    }
  })
})

describe("Dockerfile", () => {
  const dockerfile = readFileSync(path.join(repoRoot, "Dockerfile"), "utf8")
  const instructions = dockerfile
    .replace(/\\\n/g, " ")
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"))
  const ignored = readFileSync(path.join(repoRoot, ".dockerignore"), "utf8")
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"))
  const isIgnored = (file: string) =>
    ignored.some((pattern) => new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, "[^/]*")}(/.*)?$`).test(file))

  it("builds on node:24-slim with npm ci and npm run build, and runs dist/main.js", () => {
    const froms = instructions.filter((i) => i.startsWith("FROM "))
    expect(froms.length).toBeGreaterThan(0)
    for (const from of froms) expect(from).toMatch(/^FROM node:24-slim\b/)
    expect(instructions.some((i) => /^RUN .*\bnpm ci\b/.test(i))).toBe(true)
    expect(instructions.some((i) => /^RUN .*\bnpm run build\b/.test(i))).toBe(true)
    expect(instructions.filter((i) => i.startsWith("CMD ")).at(-1)).toBe("CMD [\"node\",\"dist/main.js\"]")
    expect(instructions).toContain("EXPOSE 8081")
  })

  it("copies only what exists in the repository and is not in .dockerignore", () => {
    const copies = instructions.filter((i) => i.startsWith("COPY ") && !i.includes("--from="))
    expect(copies.length).toBeGreaterThan(0)
    for (const copy of copies) {
      const sources = copy.split(/\s+/).slice(1).filter((w) => !w.startsWith("--")).slice(0, -1)
      for (const source of sources) {
        expect(existsSync(path.join(repoRoot, source)), `${source} exists`).toBe(true)
        expect(isIgnored(source), `${source} is not ignored`).toBe(false)
      }
    }
    // what the engine reads at run time is in the image
    const copied = copies.flatMap((c) => c.split(/\s+/).slice(1, -1))
    for (const needed of ["migrations", "src", "package-lock.json"]) expect(copied).toContain(needed)
  })
})
