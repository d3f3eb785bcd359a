-- Benchmark driver for ferry.store.copy (bench/copy/run.sh runs it; not a migration procedure).
--
-- mode = "copy" (default): one ferry.store.copy from `src` to `dst`, then the report as ONE JSON
--   line on stdout. `src`/`dst` are store URLs (file:///abs/dir, s3://bucket, memory://x) or an
--   absolute local path. S3 stores get endpoint/keys from the parameters (or the AWS_* variables).
--   `map` (optional) is a key prefix: map = function(k) return map .. k end.
--
-- mode = "mapbench": the cost of a Lua `map` callback, without S3. Fills memory://a with `keys`
--   one-byte objects, copies them into memory://b twice (plain, and through map = "x/" .. k) so
--   that b holds every destination key, then times `rounds` alternating pairs of copies that
--   skip everything (compare = size): one without map, one with. The difference is what map
--   adds (the Lua calls and the new key strings); listing and comparing are the same in both.
--   Prints one JSON line with the timings.
--
-- mode = "list": one listing of `dst` the way ferry.store.copy lists a destination (a delimiter
--   listing of the first level, then every folder listed recursively, 16 at a time), counting
--   keys and bytes. The reference for "a re-run costs at most 2 listings".
--
-- mode = "ceiling": the server's ceiling for small PUTs. `objects` PUTs of `size` bytes that are
--   already in memory (one Lua string, the same for every key), `concurrency` at once, keys laid
--   out as the generated data (d000/obj-000000 ...). No source listing, no file reads, no
--   destination listing, no HEAD: one signed PUT per object, which is the least any S3 client
--   must send. Prints one JSON line.

local p = ferry.params{
  {name = "mode", type = "string", default = "copy", choices = {"copy", "mapbench", "list", "ceiling"},
   doc = "copy: one timed copy; mapbench: cost of a map callback; list: one destination listing; ceiling: PUTs from memory"},
  {name = "src", type = "string", default = "", doc = "source store URL or absolute path"},
  {name = "dst", type = "string", default = "", doc = "destination store URL or absolute path"},
  {name = "endpoint", type = "string", default = "", doc = "S3 endpoint (http://127.0.0.1:PORT)"},
  {name = "access_key", type = "string", default = "", doc = "S3 access key (else AWS_ACCESS_KEY_ID)"},
  {name = "secret_key", type = "string", default = "", doc = "S3 secret key (else AWS_SECRET_ACCESS_KEY)"},
  {name = "concurrency", type = "integer", default = 64, doc = "objects copied at once"},
  {name = "compare", type = "string", default = "size", choices = {"none", "exists", "size", "checksum"},
   doc = "how existing destination objects are compared"},
  {name = "map", type = "string", default = "", doc = "destination key prefix, applied through a Lua map callback"},
  {name = "opts", type = "string", default = "",
   doc = "extra ferry.store.copy options as a JSON object, e.g. {\"part_size\":\"32MiB\"}"},
  {name = "unsigned_payload", type = "boolean", default = false,
   doc = "S3 store option unsigned_payload: bodies not hashed for the signature"},
  {name = "keys", type = "integer", default = 1000000, doc = "mapbench: number of keys"},
  {name = "rounds", type = "integer", default = 3, doc = "mapbench: timed pairs of copies"},
  {name = "objects", type = "integer", default = 10000, doc = "ceiling: number of PUTs"},
  {name = "size", type = "integer", default = 4096, doc = "ceiling: bytes per object"},
  {name = "per_dir", type = "integer", default = 1000, doc = "ceiling: keys per folder"},
}

local function url_of(s)
  if s:sub(1, 1) == "/" then
    return "file://" .. s
  end
  return s
end

local function open(s)
  local u = url_of(s)
  if u:match("^s3://") then
    local o = {region = "us-east-1"}
    if p.endpoint ~= "" then
      o.endpoint = p.endpoint
      o.allow_http = p.endpoint:match("^http://") ~= nil
    end
    if p.unsigned_payload then o.unsigned_payload = true end
    if p.access_key ~= "" then
      o.access_key_id = p.access_key
      o.secret_access_key = p.secret_key
    end
    return ferry.store.open(u, o)
  end
  return ferry.store.open(u)
end

-- Wall clock in seconds (Lua has no monotonic clock; `date` is good to a millisecond or so).
local function now()
  local r = ferry.exec.run{"date", "+%s.%N", read_only = true}
  return tonumber(r.stdout)
end

if p.mode == "copy" then
  assert(p.src ~= "" and p.dst ~= "", "copy.lua: src and dst are required")
  local src, dst = open(p.src), open(p.dst)
  local opts = {concurrency = p.concurrency, compare = p.compare}
  if p.opts ~= "" then
    for k, v in pairs(ferry.json.decode(p.opts)) do opts[k] = v end
  end
  if p.map ~= "" then
    local prefix = p.map
    opts.map = function(k) return prefix .. k end
  end
  local t0 = now()
  local r = ferry.store.copy(src, dst, opts)
  local wall = now() - t0
  print(ferry.json.encode({
    copied = r.copied, skipped = r.skipped, failed = r.failed, bytes = r.bytes,
    seconds = r.seconds, wall = wall, retried = r.retried,
    destination_objects = r.destination_objects,
    first_error = r.errors[1] and (r.errors[1].key .. ": " .. r.errors[1].message) or nil,
  }))
  return
end

if p.mode == "list" then
  assert(p.dst ~= "", "copy.lua: dst is required")
  local dst = open(p.dst)
  local t0 = now()
  local n, bytes, folders = 0, 0, {}
  for e in dst:list(nil, {delimiter = true}) do
    if e.prefix then folders[#folders + 1] = e.key else n, bytes = n + 1, bytes + e.size end
  end
  local counts = ferry.task.parallel(folders, {concurrency = 16}, function(f)
    local c, b = 0, 0
    for e in dst:list(f) do c, b = c + 1, b + e.size end
    return {c, b}
  end)
  for _, c in ipairs(counts) do n, bytes = n + c[1], bytes + c[2] end
  print(ferry.json.encode({listed = n, bytes = bytes, folders = #folders, wall = now() - t0}))
  return
end

if p.mode == "ceiling" then
  assert(p.dst ~= "", "copy.lua: dst is required")
  local dst = open(p.dst)
  local data = ("0123456789abcdef"):rep(p.size // 16 + 1):sub(1, p.size)
  local keys = {}
  for i = 0, p.objects - 1 do
    keys[#keys + 1] = ("d%03d/obj-%06d"):format(i // p.per_dir, i % p.per_dir)
  end
  local t0 = now()
  ferry.task.parallel(keys, {concurrency = p.concurrency}, function(k) dst:put(k, data) end)
  local wall = now() - t0
  print(ferry.json.encode({copied = #keys, skipped = 0, failed = 0, bytes = #keys * p.size, wall = wall}))
  return
end

-- mode = "mapbench"
local a = ferry.store.open("memory://bench-map-a")
local b = ferry.store.open("memory://bench-map-b")
local n = p.keys
local t0 = now()
local keys = {}
for i = 1, n do
  keys[i] = ("d%03d/obj-%07d"):format(i % 1000, i)
end
ferry.task.parallel(keys, {concurrency = 256}, function(k) a:put(k, "x") end)
keys = nil
local fill = now() - t0

local function map(k) return "x/" .. k end
local c = p.concurrency
-- Fill b with both key sets (these are real copies; reported for information).
t0 = now()
local r1 = ferry.store.copy(a, b, {concurrency = c})
local first_plain = now() - t0
t0 = now()
local r2 = ferry.store.copy(a, b, {concurrency = c, map = map})
local first_map = now() - t0
assert(r1.copied == n and r2.copied == n, "mapbench: fill copies did not copy every key")

local plain, mapped, plain_engine, mapped_engine = {}, {}, {}, {}
for i = 1, p.rounds do
  for _, with_map in ipairs(i % 2 == 1 and {false, true} or {true, false}) do
    local o = {concurrency = c}
    if with_map then o.map = map end
    t0 = now()
    local r = ferry.store.copy(a, b, o)
    local dt = now() - t0
    assert(r.skipped == n and r.copied == 0, "mapbench: expected every key skipped")
    if with_map then
      mapped[#mapped + 1], mapped_engine[#mapped_engine + 1] = dt, r.seconds
    else
      plain[#plain + 1], plain_engine[#plain_engine + 1] = dt, r.seconds
    end
  end
end

local function median(t)
  local s = {}
  for i, v in ipairs(t) do s[i] = v end
  table.sort(s)
  local m = #s
  if m % 2 == 1 then return s[(m + 1) // 2] end
  return (s[m // 2] + s[m // 2 + 1]) / 2
end

print(ferry.json.encode({
  keys = n, rounds = p.rounds, fill = fill,
  first_copy_plain = first_plain, first_copy_map = first_map,
  skip_plain = median(plain), skip_map = median(mapped),
  skip_plain_engine = median(plain_engine), skip_map_engine = median(mapped_engine),
  added = median(mapped) - median(plain),
  added_engine = median(mapped_engine) - median(plain_engine),
  added_first_copy = first_map - first_plain,
}))
