-- SQL copy benchmark: one ferry.sql.copy_table run, inside a step so it is resumable like a real
-- job. Prints the copy report as one JSON line on stdout. Driven by bench/sql/run.sh.
local p = ferry.params{
  {name = "src", type = "string", required = true, secret = true, doc = "source database URL"},
  {name = "dst", type = "string", required = true, secret = true, doc = "target database URL"},
  {name = "table", type = "string", default = "t", doc = "table to copy (same name on both sides)"},
  {name = "workers", type = "integer", default = 4, doc = "concurrent range workers"},
  {name = "batch", type = "integer", default = 5000, doc = "rows per SELECT page and per INSERT"},
  {name = "verify", type = "string", default = "count", doc = "count | checksum | none"},
  {name = "load", type = "string", default = "auto", doc = "auto | insert | load_data | copy (copy_table's load: auto = INSERTs on MySQL, COPY on PostgreSQL)"},
}
-- One pooled connection per worker on each side, plus one for the ticker/verify queries.
local src = ferry.sql.connect(p.src, {pool_size = p.workers + 1})
local dst = ferry.sql.connect(p.dst, {pool_size = p.workers + 1})
local report = ferry.step("copy", "Copy " .. p.table, function()
  return ferry.sql.copy_table(src, dst, {table = p.table, workers = p.workers, batch = p.batch,
    verify = p.verify,
    -- Passed only when asked for, so the script also runs binaries without the option.
    load = p.load ~= "auto" and p.load or nil})
end)
print(ferry.json.encode(report))
