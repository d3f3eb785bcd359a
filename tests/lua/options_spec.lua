-- Every option table of the API refuses a misspelled key, naming the function, the key and the
-- nearest documented option (one case per module family).
local function refuses(fn_name, key, near, f, ...)
  local ok, err = pcall(f, ...)
  assert(not ok, fn_name .. " accepted the option '" .. key .. "'")
  local m = type(err) == "table" and err.message or tostring(err)
  local want = ("%s: unknown option '%s' (did you mean '%s'?)"):format(fn_name, key, near)
  assert(m:find(want, 1, true), "expected: " .. want .. "\ngot: " .. m)
end

-- store
local s = ferry.store.open("memory://options-spec")
refuses("ferry.store.copy", "concurency", "concurrency", ferry.store.copy, s, s, {prefix = "", concurency = 2})
refuses("ferry.store.open", "regoin", "region", ferry.store.open, "memory://x", {regoin = "eu"})
local ok, err = pcall(ferry.store.open, "s3://bucket/x", {account = "a", probe = false})
assert(not ok and err.message:find("unknown option 'account' for an S3 store", 1, true), tostring(err))
assert(ferry.store.open("memory://x", {create = true, probe = false}))

-- store handle methods
refuses("ferry.store.Store:list", "delimter", "delimiter", function() return s:list("", {delimter = true}) end)
refuses("ferry.store.Store:put_zip", "levle", "level", function() return s:put_zip("/nonexistent", "k.zip", {levle = 1}) end)
refuses("ferry.store.Store:put_file", "multipart_treshold", "multipart_threshold",
  function() return s:put_file("/nonexistent", "k", {multipart_treshold = "8MiB"}) end)
assert(s:list("", {delimiter = true}))

-- sql (refused before connecting)
refuses("ferry.sql.connect", "pool_sise", "pool_size", ferry.sql.connect, "mysql://u@127.0.0.1:1/d", {pool_sise = 2})

-- http (refused before sending)
refuses("ferry.http.request", "hedaers", "headers", ferry.http.request, {url = "http://127.0.0.1:1/", hedaers = {}})
refuses("ferry.http.request", "max_redirect", "max_redirects", ferry.http.get, "http://127.0.0.1:1/", {max_redirect = 1})
refuses("ferry.http.request body", "formt", "format", ferry.http.request,
  {method = "POST", url = "http://127.0.0.1:1/", body = {db = true, sql = "select 1", formt = "csv"}})

-- exec, task, throttle, log
refuses("ferry.exec.run", "timout", "timeout", ferry.exec.run, {"true", timout = 1})
refuses("ferry.task.parallel", "fail_fst", "fail_fast", ferry.task.parallel, {1}, {fail_fst = true}, function() end)
refuses("ferry.throttle.new", "brust", "burst", ferry.throttle.new, {rate = 10, brust = 5})
refuses("ferry.log.progress", "totl", "total", ferry.log.progress, {title = "t", totl = 3})

-- fs
local dir = os.tmpname()
refuses("ferry.fs.write", "apend", "append", ferry.fs.write, dir, "x", {apend = true})
refuses("ferry.fs.remove", "recursve", "recursive", ferry.fs.remove, dir, {recursve = true})
ferry.fs.remove(dir)

-- codecs
refuses("ferry.json.encode", "prety", "pretty", ferry.json.encode, {}, {prety = true})
refuses("ferry.csv.decode", "delimter", "delimiter", ferry.csv.decode, "a\n1\n", {delimter = ";"})
refuses("ferry.csv.encode", "colums", "columns", ferry.csv.encode, {{a = 1}}, {colums = {"a"}})
refuses("ferry.hex.encode", "uper", "upper", ferry.hex.encode, "x", {uper = true})
refuses("ferry.ini.decode_ordered", "strct", "strict", ferry.ini.decode_ordered, "[a]\n", {strct = true})

-- runbook
refuses("ferry.step", "alway", "always", ferry.step, "options-spec", function() end, {alway = true})
refuses("ferry.params 'x'", "defualt", "default", ferry.params, {{name = "x", type = "string", defualt = "a"}})

print("options ok")
