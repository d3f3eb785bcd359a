-- A copy_table job for the resume and connection-drop tests.
local p = ferry.params{
  {name = "src", type = "string", required = true, secret = true, doc = "source database URL"},
  {name = "dst", type = "string", required = true, secret = true, doc = "target database URL"},
  {name = "table", type = "string", default = "big", doc = "table to copy"},
  {name = "rate", type = "number", doc = "rows per second"},
  {name = "workers", type = "integer", default = 4, doc = "workers"},
  {name = "batch", type = "integer", default = 500, doc = "rows per INSERT"},
}
local src = ferry.sql.connect(p.src)
local dst = ferry.sql.connect(p.dst)
local report = ferry.step("copy", "Copy the table", function()
  local job = ferry.task.spawn(ferry.sql.copy_table, src, dst, {table = p.table, throttle = p.rate,
    workers = p.workers, batch = p.batch, verify = "checksum"})
  local r = job:join()
  return r
end)
print(ferry.json.encode(report))
