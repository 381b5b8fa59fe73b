/**
 * The lake's tables (SPEC §6): where each lives under `LAKE_DIR` and its columns as DuckDB
 * types, for the writers (the midnight export) and for `insights query`, which shows a table
 * with no files yet as an empty view of these columns.
 *
 * Times are `TIMESTAMP WITH TIME ZONE`: in Parquet an INT64 microsecond timestamp with
 * `isAdjustedToUTC = true`, i.e. a UTC instant, which DuckDB, Spark and Athena read as such.
 * Money is `DECIMAL(12,2)` as in PostgreSQL; the daily sums are `DECIMAL(18,2)`.
 *
 * @since 0.1.0
 */

export interface LakeColumn {
  readonly name: string
  /** a DuckDB type */
  readonly type: string
}

export interface LakeTable {
  /** the view's name in `insights query` */
  readonly view: string
  /** the folder under `LAKE_DIR` that holds the table's Hive partitions */
  readonly dir: string
  /** the Hive partition keys in the path, with their types */
  readonly partitions: ReadonlyArray<LakeColumn>
  /** the columns inside the files */
  readonly columns: ReadonlyArray<LakeColumn>
}

const col = (name: string, type: string): LakeColumn => ({ name, type })
const text = (...names: Array<string>) => names.map((n) => col(n, "VARCHAR"))
const TS = "TIMESTAMP WITH TIME ZONE"
const MONEY = "DECIMAL(12,2)"

/** `exports/checkouts/dt=YYYY-MM-DD/part-0.parquet`: a day's `checkout_attribution` rows (SPEC §5). */
export const exportedCheckouts: LakeTable = {
  view: "exports.checkouts",
  dir: "exports/checkouts",
  partitions: [col("dt", "DATE")],
  columns: [
    ...text("checkout_id", "user_id", "product_id"),
    col("quantity", "INTEGER"),
    col("shipping_cost", MONEY),
    col("discount", "DOUBLE"),
    ...text("payment_method", "payment_status", "payment_description", "shipping_address"),
    col("checkout_timestamp", TS),
    ...text("gender", "category", "product_name", "brand"),
    col("total_amount", MONEY),
    col("profit", MONEY),
    ...text("click_id", "source"),
    col("click_timestamp", TS),
    col("is_late", "BOOLEAN"),
    col("written_at", TS)
  ]
}

/**
 * `exports/daily_summary/dt=YYYY-MM-DD/part-0.parquet`: one row per day. `paid_checkouts`,
 * `units`, `revenue` and `profit` count `payment_status = 'Success'` only (NULL adds 0), as
 * the hourly rollup does; `attributed_share` is attributed checkouts / checkouts, NULL for
 * a day without checkouts.
 */
export const dailySummary: LakeTable = {
  view: "exports.daily_summary",
  dir: "exports/daily_summary",
  partitions: [col("dt", "DATE")],
  columns: [
    col("day", "DATE"),
    col("checkouts", "BIGINT"),
    col("paid_checkouts", "BIGINT"),
    col("units", "BIGINT"),
    col("revenue", "DECIMAL(18,2)"),
    col("profit", "DECIMAL(18,2)"),
    col("attributed_share", "DOUBLE")
  ]
}

// as DuckDB reads the folders of files the lake wrote (hive_partitioning infers DATE and BIGINT)
const rawPartitions = [col("dt", "DATE"), col("hour", "BIGINT")]
const position = [col("partition", "INTEGER"), col("offset", "BIGINT")]

/** `raw/<clicks topic>/dt=YYYY-MM-DD/hour=HH/*.parquet`: every decoded click (SPEC §1 fields + partition, offset). */
export const rawClicks = (topic: string): LakeTable => ({
  view: "raw.clicks",
  dir: `raw/${topic}`,
  partitions: rawPartitions,
  columns: [...text("click_id", "user_id", "product_id", "source", "event_type", "user_agent", "ip_address"), col("click_timestamp", TS), ...position]
})

/** `raw/<checkouts topic>/dt=YYYY-MM-DD/hour=HH/*.parquet`: every decoded checkout. */
export const rawCheckouts = (topic: string): LakeTable => ({
  view: "raw.checkouts",
  dir: `raw/${topic}`,
  partitions: rawPartitions,
  columns: [
    ...text("checkout_id", "user_id", "product_id"),
    col("quantity", "INTEGER"),
    col("shipping_cost", MONEY),
    col("discount", "DOUBLE"),
    ...text("payment_method", "payment_status", "payment_description", "shipping_address"),
    col("checkout_timestamp", TS),
    ...position
  ]
})

/** Temporary folders of the export, outside every table's folder: DuckDB's `**` glob descends into dot-folders. */
export const exportStagingDir = "exports/.staging"
