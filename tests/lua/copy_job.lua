-- A copy job for engine tests: src to dst with a list cache, printing the report as JSON.
local p = ferry.params{
  {name = "src", type = "string", required = true, doc = "source store URL"},
  {name = "dst", type = "string", required = true, doc = "destination store URL"},
  {name = "cache", type = "path", doc = "list cache file"},
  {name = "concurrency", type = "integer", default = 16, doc = "parallel transfers"},
  {name = "ops_rate", type = "number", doc = "objects per second (slows the copy down)"},
  {name = "compare", type = "string", default = "size", doc = "compare mode"},
  {name = "verify", type = "string", doc = "verify mode"},
  {name = "fail_fast", type = "boolean", default = false, doc = "stop at the first failure"},
  {name = "bad_keys", type = "boolean", default = false, doc = "map keys ending in 7 to an invalid key"},
}
local src = ferry.store.open(p.src)
local dst = ferry.store.open(p.dst, {create = true})
local opts = {
  list_cache = p.cache, concurrency = p.concurrency, compare = p.compare, verify = p.verify,
  fail_fast = p.fail_fast, ops_throttle = p.ops_rate,
}
if p.bad_keys then
  opts.map = function(k) if k:sub(-1) == "7" then return k .. "//invalid" end return k end
end
local r = ferry.step("copy", "Copy objects", function()
  local r = ferry.store.copy(src, dst, opts)
  return {copied = r.copied, skipped = r.skipped, failed = r.failed, bytes = r.bytes,
          retried = r.retried, inventory = r.inventory, errors = #r.errors,
          first_error = r.errors[1] and r.errors[1].message}
end)
print(ferry.json.encode(r))
if r.failed > 0 then ferry.fail("io", r.failed .. " objects failed") end
