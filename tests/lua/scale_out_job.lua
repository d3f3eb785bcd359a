-- A sharded copy for the scale-out tests: a once-only check, the sharded copy, a once-only
-- finish step that counts the destination and writes a marker.
local p = ferry.params{
  {name = "src", type = "string", required = true, doc = "source store URL"},
  {name = "dst", type = "string", required = true, doc = "destination store URL"},
  {name = "concurrency", type = "integer", default = 8, doc = "parallel transfers"},
  {name = "ops_rate", type = "number", doc = "objects per second (slows the copy down)"},
}
local src = ferry.store.open(p.src)
local dst = ferry.store.open(p.dst, {create = true})

ferry.step("check", "Check both stores answer", function()
  local n = 0
  for _ in src:list() do n = n + 1 end
  return {source_objects = n}
end)

local r = ferry.step("copy", "Copy objects", function()
  local r = ferry.store.copy(src, dst, {
    compare = "size", concurrency = p.concurrency, ops_throttle = p.ops_rate,
    list_cache = ferry.state.dir() .. "/list.cache",
  })
  return {copied = r.copied, skipped = r.skipped, failed = r.failed, other_shards = r.other_shards}
end, {sharded = true})
print(ferry.json.encode(r))

ferry.step("finish", "Count the destination and write the marker", function()
  local n = 0
  for e in dst:list() do
    if e.key ~= "_FERRY_DONE" then n = n + 1 end
  end
  dst:put("_FERRY_DONE", tostring(n))
  return {destination_objects = n}
end)
