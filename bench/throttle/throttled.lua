-- One throttled copy between two local folders; prints the report and the achieved rates.
local p = ferry.params{
  {name = "src", type = "path", required = true, doc = "source folder"},
  {name = "dst", type = "path", required = true, doc = "destination folder"},
  {name = "bytes_per_second", type = "number", doc = "byte rate limit"},
  {name = "objects_per_second", type = "number", doc = "object rate limit"},
  {name = "double_after", type = "duration", doc = "double the byte rate after this long"},
}
local src = ferry.store.open("file://" .. p.src)
local dst = ferry.store.open("file://" .. p.dst, {create = true})
local limiter = p.bytes_per_second and ferry.throttle.new{rate = p.bytes_per_second}
if p.double_after then
  ferry.task.spawn(function()
    ferry.task.sleep(p.double_after)
    limiter:set_rate(p.bytes_per_second * 2)
  end)
end
local r = ferry.store.copy(src, dst, {compare = "none", concurrency = 16, throttle = limiter,
  ops_throttle = p.objects_per_second})
print(ferry.json.encode({copied = r.copied, bytes = r.bytes, seconds = r.seconds,
  bytes_per_second = r.bytes / r.seconds, objects_per_second = r.copied / r.seconds}))
