-- The store conformance suite: the same checks against every backend. The store under test is
-- the `url` parameter; credentials and endpoints come from the environment, as for users.
local p = ferry.params{
  {name = "url", type = "string", required = true, doc = "store under test (an empty bucket/prefix)"},
  {name = "scratch", type = "path", required = true, doc = "a local scratch folder"},
  {name = "many", type = "integer", default = 2500, doc = "objects for the listing test"},
  {name = "large", type = "size", default = "12MiB", doc = "size of the multipart object"},
}

local s = ferry.store.open(p.url)
local results = {}
local function check(name, fn)
  fn()
  results[#results + 1] = name
end

check("binary round trip", function()
  local bytes = {}
  for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
  local all = table.concat(bytes):rep(17)
  s:put("bin/all-bytes", all)
  assert(s:get("bin/all-bytes") == all, "binary content changed")
  assert(s:head("bin/all-bytes").size == #all)
  s:put("bin/empty", "")
  assert(s:get("bin/empty") == "" and s:head("bin/empty").size == 0)
  assert(s:head("bin/absent") == nil and not s:exists("bin/absent"))
  local ok, err = pcall(s.get, s, "bin/absent")
  assert(not ok and err.kind == "not_found", tostring(err))
  assert(err.message:find("bin/absent", 1, true))
end)

check("listing with pagination", function()
  local keys = {}
  for i = 1, p.many do keys[i] = ("many/%05d"):format(i) end
  ferry.task.parallel(keys, {concurrency = 32}, function(k) s:put(k, k) end)
  local seen, total = {}, 0
  for e in s:list("many") do
    assert(not seen[e.key], "listed twice: " .. e.key)
    seen[e.key] = true
    total = total + 1
    assert(e.size == #e.key and e.last_modified)
  end
  assert(total == p.many, ("listed %d of %d"):format(total, p.many))
  local top = {}
  for e in s:list(nil, {delimiter = true}) do top[#top + 1] = e.key end
  table.sort(top)
  assert(table.concat(top, ",") == "bin/,many/", table.concat(top, ","))
end)

check("server-side copy", function()
  s:copy_object("bin/all-bytes", "bin/copied")
  assert(s:get("bin/copied") == s:get("bin/all-bytes"))
  s:delete("bin/copied")
end)

check("delete", function()
  s:delete("many/00001")
  assert(not s:exists("many/00001"))
  s:delete("many/00001") -- deleting an absent key is not an error
end)

check("large multipart object", function()
  local src = p.scratch .. "/large.bin"
  local chunk = {}
  for i = 1, 1024 do chunk[i] = string.char((i * 7) % 256) end
  chunk = table.concat(chunk)
  local parts, n = {}, p.large // 1024
  for i = 1, n do parts[i] = chunk end
  ferry.fs.write(src, table.concat(parts))
  assert(s:put_file(src, "large/object.bin", {multipart_threshold = "6MiB"}) == p.large)
  assert(s:head("large/object.bin").size == p.large)
  assert(s:get_file("large/object.bin", p.scratch .. "/large.back") == p.large)
  assert(ferry.fs.sha256(p.scratch .. "/large.back") == ferry.fs.sha256(src), "multipart content differs")
end)

check("downloads side by side and a failed one leaves nothing", function()
  -- x.zip and x.json into one folder at once: each has its own temporary file.
  local zip, json = ("z"):rep(3 * 1024 * 1024), ("{}"):rep(1024 * 1024)
  s:put("dl/x.zip", zip)
  s:put("dl/x.json", json)
  local dir = p.scratch .. "/dl"
  local sizes = ferry.task.parallel({"x.zip", "x.json"}, {concurrency = 2}, function(name)
    return s:get_file("dl/" .. name, dir .. "/" .. name)
  end)
  assert(sizes[1] == #zip and sizes[2] == #json, ferry.json.encode(sizes))
  assert(ferry.fs.read(dir .. "/x.zip") == zip and ferry.fs.read(dir .. "/x.json") == json, "downloads mixed up")
  local ok, err = pcall(s.get_file, s, "dl/absent", dir .. "/absent")
  assert(not ok and err.kind == "not_found", tostring(err))
  local left = table.concat(ferry.fs.list(dir), ",")
  assert(left == "x.json,x.zip", "left in the folder: " .. left)
end)

check("copy across stores with map, compare modes and list cache", function()
  local here = ferry.store.open("file://" .. p.scratch .. "/local", {create = true})
  for i = 1, 50 do here:put(("repo/%02x/%038d"):format(i, i), ("object %d"):format(i)) end
  -- Seafile's layouts: repo/ab/cdef... on disk, repo/abcdef... in a bucket.
  local flat = function(k) return (k:gsub("^([^/]+)/(%x%x)/", "%1/%2")) end
  local r = ferry.store.copy(here, s, {prefix = "repo", map = flat, verify = "size", concurrency = 8})
  assert(r.copied == 50 and r.failed == 0, ferry.json.encode(r))
  assert(s:get("repo/01" .. ("%038d"):format(1)) == "object 1")
  for _, mode in ipairs({"exists", "size", "checksum"}) do
    local again = ferry.store.copy(here, s, {prefix = "repo", map = flat, compare = mode})
    assert(again.copied == 0 and again.skipped == 50, mode .. ": " .. ferry.json.encode(again))
  end
  assert(ferry.store.copy(here, s, {prefix = "repo", map = flat, compare = "none"}).copied == 50)
  -- A changed source object is copied again by size and by checksum.
  here:put("repo/02/" .. ("%038d"):format(2), "object 2, longer now")
  assert(ferry.store.copy(here, s, {prefix = "repo", map = flat}).copied == 1)
  here:put("repo/03/" .. ("%038d"):format(3), "OBJECT 3")
  assert(ferry.store.copy(here, s, {prefix = "repo", map = flat, compare = "size"}).copied == 0)
  assert(ferry.store.copy(here, s, {prefix = "repo", map = flat, compare = "checksum"}).copied == 1)
  assert(s:get("repo/03" .. ("%038d"):format(3)) == "OBJECT 3")
  -- A list cache: filled by the first run, trusted by the next, appended as objects land.
  local cache = p.scratch .. "/list.cache"
  local c1 = ferry.store.copy(here, s, {prefix = "repo", map = flat, list_cache = cache, dst_prefix = "repo"})
  assert(c1.inventory == "listing" and c1.skipped == 50)
  here:put("repo/ff/" .. ("%038d"):format(255), "new")
  local c2 = ferry.store.copy(here, s, {prefix = "repo", map = flat, list_cache = cache})
  assert(c2.inventory == "cache" and c2.copied == 1 and c2.skipped == 50, ferry.json.encode(c2))
  local c3 = ferry.store.copy(here, s, {prefix = "repo", map = flat, list_cache = cache})
  assert(c3.copied == 0 and c3.skipped == 51)
  -- And back, the other direction, from an explicit key list.
  local back = ferry.store.open("file://" .. p.scratch .. "/back", {create = true})
  local keys = {}
  for e in s:list("repo") do keys[#keys + 1] = e.key end
  local rb = ferry.store.copy(s, back, {keys = keys, verify = "checksum"})
  assert(rb.copied == #keys and rb.failed == 0)
  -- From a Lua iterator of keys and {key, size} tables.
  local it_dst = ferry.store.open("file://" .. p.scratch .. "/from-iter", {create = true})
  local i = 0
  local ri = ferry.store.copy(s, it_dst, {iter = function()
    i = i + 1
    if i > #keys then return nil end
    if i % 2 == 0 then return {key = keys[i], size = s:head(keys[i]).size} end
    return keys[i]
  end})
  assert(ri.copied == #keys, ferry.json.encode(ri))
  -- A map that leaves objects out.
  local some = ferry.store.copy(here, back, {prefix = "repo", map = function(k) if k:find("^repo/0") then return k end end})
  assert(some.left_out > 0 and some.copied + some.skipped + some.left_out == 51)
end)

check("bad input", function()
  local ok, err = pcall(ferry.store.copy, s, s, {bogus = 1})
  assert(not ok and err.kind == "invalid_input" and err.message:find("unknown option 'bogus'"))
  local ok2, err2 = pcall(s.get, s, "a//b")
  assert(not ok2 and err2.kind == "invalid_input")
end)

print("conformance ok: " .. table.concat(results, "; "))
