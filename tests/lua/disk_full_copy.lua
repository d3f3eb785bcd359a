-- A copy for the disk-full tests (tests/disk_full.rs): src to dst, optionally with a list cache.
-- Unlike copy_job.lua it fails inside the step when objects failed, so the journal does not
-- record the copy as done and a re-run with the same --state copies what is missing.
local p = ferry.params{
  {name = "src", type = "string", required = true, doc = "source store URL"},
  {name = "dst", type = "string", required = true, doc = "destination store URL"},
  {name = "cache", type = "path", doc = "list cache file"},
  {name = "concurrency", type = "integer", default = 4, doc = "parallel transfers"},
}
local src = ferry.store.open(p.src)
local dst = ferry.store.open(p.dst, {create = true})
local r = ferry.step("copy", "Copy objects", function()
  local r = ferry.store.copy(src, dst, {list_cache = p.cache, concurrency = p.concurrency, retries = 1})
  local out = {copied = r.copied, skipped = r.skipped, failed = r.failed, bytes = r.bytes,
               inventory = r.inventory, first_error = r.errors[1] and r.errors[1].message}
  print(ferry.json.encode(out))
  if r.failed > 0 then
    ferry.fail("io", r.failed .. " objects failed, first: " .. out.first_error)
  end
  return out
end)
