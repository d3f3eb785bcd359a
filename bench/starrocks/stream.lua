-- ferry's side of starrocks-sync, without the StarRocks double (bench/starrocks/stream.sh runs it).
--
-- For each partition of `db`.`table` on a MySQL-protocol source, in parallel (`in_flight` at once):
-- SELECT * FROM t PARTITION (p) streamed as CSV (\x01 between columns, \x02 after rows, NULL as
-- \N, the datetime columns as starrocks-sync sends them) into one chunked PUT, the body spec that
-- lua/ferry/starrocks_copy.lua's C.stream_load gives ferry.http.request. The receiver is
-- bench/starrocks/sink.py, a Stream Load endpoint that counts rows and discards them. Prints one
-- JSON line: partitions, rows and bytes sent, and the rows the sink counted.

local p = ferry.params{
  {name = "source", type = "string", doc = "mysql://user@host:port/ of the source"},
  {name = "db", type = "string", default = "bench_sr"},
  {name = "table", type = "string", default = "orders"},
  {name = "sink", type = "string", doc = "http://127.0.0.1:PORT of sink.py"},
  {name = "in_flight", type = "integer", default = 3, doc = "partitions streamed at once"},
}

local src = ferry.sql.connect(p.source, {pool_size = p.in_flight + 1})
local parts = {}
for _, r in ipairs(src:query([[SELECT PARTITION_NAME AS p FROM information_schema.PARTITIONS
    WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND PARTITION_NAME IS NOT NULL ORDER BY PARTITION_ORDINAL_POSITION]],
    {p.db, p.table})) do
  parts[#parts + 1] = r.p
end
assert(#parts > 0, p.db .. "." .. p.table .. " has no partitions")
local dcols = {}
for _, r in ipairs(src:query([[SELECT COLUMN_NAME AS c FROM information_schema.COLUMNS
    WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND DATA_TYPE IN ('datetime', 'timestamp')]], {p.db, p.table})) do
  dcols[#dcols + 1] = r.c
end

local results = ferry.task.parallel(parts, {concurrency = p.in_flight}, function(part)
  local sql = ("SELECT * FROM `%s`.`%s` PARTITION (`%s`)"):format(p.db, p.table, part)
  local r = ferry.http.request{method = "PUT",
    url = ("%s/api/%s/%s/_stream_load"):format(p.sink, p.db, p.table),
    headers = {label = "bench_" .. part, format = "csv", column_separator = "\\x01", row_delimiter = "\\x02"},
    body = {db = src, sql = sql, datetime_columns = dcols, format = "csv", column_separator = "\1",
            row_delimiter = "\2"},
    expect_status = 200}
  local answer = ferry.json.decode(r.body)
  return {rows = r.sent.rows, bytes = r.sent.bytes, loaded = answer.NumberLoadedRows}
end)

local rows, bytes, loaded = 0, 0, 0
for _, r in ipairs(results) do
  rows, bytes, loaded = rows + r.rows, bytes + r.bytes, loaded + r.loaded
end
print(ferry.json.encode{partitions = #parts, rows = rows, bytes = bytes, loaded = loaded})
