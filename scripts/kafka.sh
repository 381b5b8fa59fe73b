#!/usr/bin/env bash
# Single-node Apache Kafka broker (KRaft, broker+controller in one JVM) for
# development, tests, CI and benchmarks. Jars come from Maven Central via
# scripts/kafka/pom.xml; no Docker, no Apache download site.
#
#   scripts/kafka.sh start|stop|restart|status|reset|logs
#
# See scripts/kafka/README.md for details. Environment (all optional):
#   KAFKA_PORT               PLAINTEXT listener port            (default 9092)
#   KAFKA_CONTROLLER_PORT    KRaft controller port              (default KAFKA_PORT+1000)
#   KAFKA_DATA_DIR           config, logs, pid, broker.log      (default <repo>/.kafka)
#   KAFKA_VERSION            kafka_2.13 version from Maven      (default 3.9.2)
#   KAFKA_HOME_CACHE         jar cache dir                      (default ~/.cache/insights-kafka/<version>)
#   KAFKA_HEAP_OPTS          JVM heap                           (default "-Xmx512m -Xms256m")
#   KAFKA_JVM_OPTS           extra JVM flags                    (default G1 tuned like kafka-server-start.sh)
#   KAFKA_LOG_LEVEL          root log4j level in broker.log     (default INFO)
#   KAFKA_EXTRA_CONFIG       extra server.properties lines (newline separated, appended last = wins)
#   KAFKA_START_TIMEOUT      seconds to wait for readiness      (default 60)
#   KAFKA_STOP_TIMEOUT       seconds to wait after SIGTERM      (default 20)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
POM="$SCRIPT_DIR/kafka/pom.xml"

KAFKA_VERSION="${KAFKA_VERSION:-3.9.2}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1000))}"
KAFKA_DATA_DIR="${KAFKA_DATA_DIR:-$REPO_ROOT/.kafka}"
KAFKA_HOME_CACHE="${KAFKA_HOME_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/insights-kafka/$KAFKA_VERSION}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xmx512m -Xms256m}"
KAFKA_JVM_OPTS="${KAFKA_JVM_OPTS:--XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true}"
KAFKA_LOG_LEVEL="${KAFKA_LOG_LEVEL:-INFO}"
KAFKA_EXTRA_CONFIG="${KAFKA_EXTRA_CONFIG:-}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-60}"
KAFKA_STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-20}"

# Absolute data dir (the broker is started with absolute paths; cwd-independent).
case "$KAFKA_DATA_DIR" in
  /*) ;;
  *) KAFKA_DATA_DIR="$PWD/$KAFKA_DATA_DIR" ;;
esac
KAFKA_DATA_DIR="${KAFKA_DATA_DIR%/}"

LIBS_DIR="$KAFKA_HOME_CACHE/libs"
CACHE_MARKER="$KAFKA_HOME_CACHE/.complete"
PID_FILE="$KAFKA_DATA_DIR/kafka.pid"
SERVER_PROPS="$KAFKA_DATA_DIR/server.properties"
LOG4J_PROPS="$KAFKA_DATA_DIR/log4j.properties"
BROKER_LOG="$KAFKA_DATA_DIR/broker.log"   # log4j output (rolled at 50 MB)
BROKER_OUT="$KAFKA_DATA_DIR/broker.out"   # JVM stdout/stderr + StorageTool output (normally ~empty)
LOG_DIRS="$KAFKA_DATA_DIR/kraft-combined-logs"
LOG_OFFSET=0
DATA_MARKER="$KAFKA_DATA_DIR/.insights-kafka-data"

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
  cat >&2 <<EOF
usage: $(basename "$0") start|stop|restart|status|reset|logs
  start    fetch jars (first run), format storage (first run), start broker, wait until ready
  stop     stop the broker started from this data dir (pid file; SIGTERM, then SIGKILL)
  restart  stop + start
  status   print running/stopped; exit 0 if running, 3 if stopped
  reset    stop + delete the data dir (topics and offsets are lost)
  logs     tail -n 100 of broker.log
port=$KAFKA_PORT controller=$KAFKA_CONTROLLER_PORT data=$KAFKA_DATA_DIR cache=$KAFKA_HOME_CACHE
EOF
}

# --- process bookkeeping ---------------------------------------------------

# Prints the pid from the pid file if that process is alive AND is the broker
# started for this data dir (guards against pid reuse). Never matches by name.
running_pid() {
  [[ -f "$PID_FILE" ]] || return 1
  local pid
  pid="$(tr -dc '0-9' <"$PID_FILE")"
  [[ -n "$pid" ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  if [[ -r "/proc/$pid/cmdline" ]]; then
    local cmd
    cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline")"
    [[ "$cmd" == *kafka.Kafka* && "$cmd" == *"$SERVER_PROPS"* ]] || return 1
  fi
  echo "$pid"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# --- jars ------------------------------------------------------------------

cache_key() {
  # Re-fetch when the version or the pom changes.
  echo "$KAFKA_VERSION $(sha256sum "$POM" | cut -d' ' -f1)"
}

ensure_jars() {
  if [[ -f "$CACHE_MARKER" && "$(cat "$CACHE_MARKER")" == "$(cache_key)" && -f "$LIBS_DIR/kafka_2.13-$KAFKA_VERSION.jar" ]]; then
    return 0
  fi
  command -v mvn >/dev/null || die "mvn not found (needed once to fetch Kafka jars into $KAFKA_HOME_CACHE)"
  mkdir -p "$KAFKA_HOME_CACHE"
  # Serialize concurrent first runs (e.g. two brokers started in parallel in CI).
  exec 8>"$KAFKA_HOME_CACHE/.lock"
  flock 8 2>/dev/null || true
  if [[ -f "$CACHE_MARKER" && "$(cat "$CACHE_MARKER")" == "$(cache_key)" && -f "$LIBS_DIR/kafka_2.13-$KAFKA_VERSION.jar" ]]; then
    exec 8>&-
    return 0
  fi
  log "fetching kafka_2.13 $KAFKA_VERSION jars from Maven Central into $LIBS_DIR ..."
  local tmp="$KAFKA_HOME_CACHE/libs.tmp.$$"
  rm -rf "$tmp"
  local mvn_log="$KAFKA_HOME_CACHE/mvn.log"
  if ! mvn -B -Dstyle.color=never -f "$POM" -Dkafka.version="$KAFKA_VERSION" \
      dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" >"$mvn_log" 2>&1; then
    rm -rf "$tmp"
    grep -E 'ERROR|FAIL' "$mvn_log" | tail -n 20 >&2 || tail -n 20 "$mvn_log" >&2
    die "mvn dependency:copy-dependencies failed (full output: $mvn_log)"
  fi
  [[ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ]] || { rm -rf "$tmp"; die "kafka_2.13-$KAFKA_VERSION.jar missing after mvn"; }
  rm -rf "$LIBS_DIR"
  mv "$tmp" "$LIBS_DIR"
  cache_key >"$CACHE_MARKER"
  log "fetched $(ls "$LIBS_DIR" | wc -l) jars ($(du -sh "$LIBS_DIR" | cut -f1))"
  exec 8>&-
}

# --- config + storage --------------------------------------------------------

write_config() {
  mkdir -p "$KAFKA_DATA_DIR" "$LOG_DIRS"
  touch "$DATA_MARKER"
  # Regenerated on every start so port/env changes apply; data in log.dirs is kept.
  cat >"$SERVER_PROPS" <<EOF
# Generated by scripts/kafka.sh on every start -- edits are overwritten.
# Use KAFKA_EXTRA_CONFIG to add or override settings.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$LOG_DIRS

# Single node: every internal topic has exactly one replica.
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
default.replication.factor=1
min.insync.replicas=1
# Fewer internal partitions than the default 50: the first consumer group /
# transactional producer has to wait for these to be created and loaded.
offsets.topic.num.partitions=8
transaction.state.log.num.partitions=8

num.partitions=4
auto.create.topics.enable=false
group.initial.rebalance.delay.ms=0
delete.topic.enable=true

# Shared 2-core machine: keep the thread pools small.
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
background.threads=4
log.retention.hours=168
log.segment.bytes=268435456
EOF
  if [[ -n "$KAFKA_EXTRA_CONFIG" ]]; then
    printf '\n# KAFKA_EXTRA_CONFIG\n%s\n' "$KAFKA_EXTRA_CONFIG" >>"$SERVER_PROPS"
  fi

  cat >"$LOG4J_PROPS" <<EOF
# Generated by scripts/kafka.sh. Everything goes to broker.log, nothing to stdout.
log4j.rootLogger=$KAFKA_LOG_LEVEL, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File=$BROKER_LOG
log4j.appender.file.MaxFileSize=50MB
log4j.appender.file.MaxBackupIndex=2
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.kafka.network.RequestChannel\$=WARN
log4j.logger.kafka.controller=INFO
log4j.logger.state.change.logger=INFO
log4j.logger.org.apache.zookeeper=WARN
EOF
}

format_storage() {
  [[ -f "$LOG_DIRS/meta.properties" ]] && return 0
  # StorageTool logs the whole KafkaConfig at INFO; keep that out of broker.log.
  local tools_log4j="$KAFKA_DATA_DIR/log4j-tools.properties"
  printf '%s\n' 'log4j.rootLogger=WARN, stderr' \
    'log4j.appender.stderr=org.apache.log4j.ConsoleAppender' \
    'log4j.appender.stderr.Target=System.err' \
    'log4j.appender.stderr.layout=org.apache.log4j.PatternLayout' \
    'log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n' >"$tools_log4j"
  local cluster_id
  cluster_id="$(java -Xmx128m -cp "$LIBS_DIR/*" -Dlog4j.configuration="file:$tools_log4j" \
    kafka.tools.StorageTool random-uuid 2>>"$BROKER_OUT" | tail -n 1 | tr -d '[:space:]')"
  [[ -n "$cluster_id" ]] || { tail -n 20 "$BROKER_OUT" >&2; die "StorageTool random-uuid returned nothing"; }
  log "formatting $LOG_DIRS (cluster id $cluster_id)"
  java -Xmx128m -cp "$LIBS_DIR/*" -Dlog4j.configuration="file:$tools_log4j" \
    kafka.tools.StorageTool format -t "$cluster_id" -c "$SERVER_PROPS" >>"$BROKER_OUT" 2>&1 \
    || { tail -n 20 "$BROKER_OUT" >&2; die "StorageTool format failed"; }
}

# --- readiness ---------------------------------------------------------------

find_node() {
  if command -v node >/dev/null; then echo node
  elif [[ -x "$REPO_ROOT/node_modules/.bin/node" ]]; then echo "$REPO_ROOT/node_modules/.bin/node"
  fi
}

# A real Kafka Metadata round trip through kafkajs (the client the engine uses).
# exit 0 = broker answered with itself in the broker list, 2 = kafkajs not installed.
metadata_check() {
  local nodebin="$1"
  KAFKAJS_NO_PARTITIONER_WARNING=1 "$nodebin" -e '
    const [repo, port] = process.argv.slice(1);
    let kafkajs;
    try { kafkajs = require(require.resolve("kafkajs", { paths: [repo] })); } catch { process.exit(2); }
    const { Kafka, logLevel } = kafkajs;
    const kafka = new Kafka({ clientId: "kafka.sh-ready", brokers: ["127.0.0.1:" + port],
      logLevel: logLevel.NOTHING, connectionTimeout: 3000, requestTimeout: 5000, retry: { retries: 0 } });
    const admin = kafka.admin();
    (async () => {
      await admin.connect();
      const c = await admin.describeCluster();
      await admin.disconnect();
      process.exit(c.brokers.some((b) => b.port === Number(port)) ? 0 : 1);
    })().catch(() => process.exit(1));
  ' "$REPO_ROOT" "$KAFKA_PORT" >/dev/null 2>&1
}

print_failure_logs() {
  # Only what this start attempt wrote (broker.log is appended across restarts).
  log "---- tail of $BROKER_LOG (this start) ----"
  (($(stat -c %s "$BROKER_LOG" 2>/dev/null || echo 0) >= LOG_OFFSET)) || LOG_OFFSET=0  # rolled
  [[ -f "$BROKER_LOG" ]] && tail -c "+$((LOG_OFFSET + 1))" "$BROKER_LOG" | tail -n 40 >&2 || true
  if [[ -s "$BROKER_OUT" ]]; then
    log "---- tail of $BROKER_OUT ----"
    tail -n 20 "$BROKER_OUT" >&2 || true
  fi
}

wait_ready() {
  local pid="$1" deadline=$((SECONDS + KAFKA_START_TIMEOUT))
  while ! port_open "$KAFKA_PORT"; do
    kill -0 "$pid" 2>/dev/null || { log "broker process $pid exited during startup"; return 1; }
    ((SECONDS < deadline)) || { log "port $KAFKA_PORT not open after ${KAFKA_START_TIMEOUT}s"; return 1; }
    sleep 0.2
  done
  local nodebin rc
  nodebin="$(find_node)"
  if [[ -z "$nodebin" ]]; then
    log "node not found; readiness = port open + 'Kafka Server started' in broker.log"
  fi
  while :; do
    kill -0 "$pid" 2>/dev/null || { log "broker process $pid exited during startup"; return 1; }
    if [[ -n "$nodebin" ]]; then
      rc=0; metadata_check "$nodebin" || rc=$?
      [[ $rc -eq 0 ]] && return 0
      if [[ $rc -eq 2 ]]; then
        log "kafkajs not installed (run npm ci); readiness = 'Kafka Server started' in broker.log"
        nodebin=""
      fi
    else
      grep -q 'Kafka Server started' "$BROKER_LOG" 2>/dev/null && return 0
    fi
    ((SECONDS < deadline)) || { log "broker not ready after ${KAFKA_START_TIMEOUT}s"; return 1; }
    sleep 0.3
  done
}

# --- commands ----------------------------------------------------------------

cmd_start() {
  local pid
  if pid="$(running_pid)"; then
    echo "kafka already running (pid $pid) on 127.0.0.1:$KAFKA_PORT, data dir $KAFKA_DATA_DIR"
    return 0
  fi
  rm -f "$PID_FILE"
  for p in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
    if port_open "$p"; then
      die "port $p on 127.0.0.1 is already in use by another process (not the broker of $KAFKA_DATA_DIR); set KAFKA_PORT / KAFKA_CONTROLLER_PORT"
    fi
  done
  command -v java >/dev/null || die "java not found (Java 17+ required)"
  local t0
  t0="$(date +%s%N)"
  ensure_jars
  write_config
  : >"$BROKER_OUT"
  format_storage
  LOG_OFFSET="$(stat -c %s "$BROKER_LOG" 2>/dev/null || echo 0)"
  # nohup + setsid: own session, survives the calling shell / CI step / Ctrl-C.
  # Both exec in place, so $! is the JVM's pid.
  # shellcheck disable=SC2086
  nohup setsid java $KAFKA_HEAP_OPTS $KAFKA_JVM_OPTS \
    -Dlog4j.configuration="file:$LOG4J_PROPS" \
    -Dkafka.logs.dir="$KAFKA_DATA_DIR" \
    -cp "$LIBS_DIR/*" kafka.Kafka "$SERVER_PROPS" \
    >>"$BROKER_OUT" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$PID_FILE"
  if ! wait_ready "$pid"; then
    print_failure_logs
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$PID_FILE"
    exit 1
  fi
  local ms=$((($(date +%s%N) - t0) / 1000000))
  printf 'kafka %s ready on 127.0.0.1:%s (pid %s, %d.%01ds), data dir %s\n' \
    "$KAFKA_VERSION" "$KAFKA_PORT" "$pid" $((ms / 1000)) $((ms % 1000 / 100)) "$KAFKA_DATA_DIR"
}

cmd_stop() {
  local pid
  if ! pid="$(running_pid)"; then
    if [[ -f "$PID_FILE" ]]; then
      rm -f "$PID_FILE"
      echo "kafka not running (removed stale pid file)"
    else
      echo "kafka not running"
    fi
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + KAFKA_STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    log "broker $pid still alive after ${KAFKA_STOP_TIMEOUT}s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for _ in $(seq 1 25); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  fi
  rm -f "$PID_FILE"
  echo "kafka stopped (pid $pid)"
}

cmd_status() {
  local pid
  if pid="$(running_pid)"; then
    echo "running (pid $pid, 127.0.0.1:$KAFKA_PORT, data dir $KAFKA_DATA_DIR)"
    exit 0
  fi
  echo "stopped (data dir $KAFKA_DATA_DIR)"
  exit 3
}

cmd_reset() {
  cmd_stop
  if [[ -d "$KAFKA_DATA_DIR" ]]; then
    # Only wipe directories this script created (or empty ones).
    if [[ -f "$DATA_MARKER" || -z "$(ls -A "$KAFKA_DATA_DIR")" ]]; then
      rm -rf "$KAFKA_DATA_DIR"
      echo "kafka data dir $KAFKA_DATA_DIR removed"
    else
      die "refusing to delete $KAFKA_DATA_DIR: not a kafka.sh data dir (no $(basename "$DATA_MARKER"))"
    fi
  fi
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  restart) cmd_stop; cmd_start ;;
  status) cmd_status ;;
  reset) cmd_reset ;;
  logs) tail -n 100 "$BROKER_LOG" ;;
  -h|--help|help) usage ;;
  *) usage; exit 2 ;;
esac
