-- Structured errors as Lua sees them.
local ok, err = pcall(ferry.fs.read, "/nonexistent/ferry-spec")
assert(not ok)
assert(err.kind == "not_found", "kind " .. tostring(err.kind))
assert(err.message:find("/nonexistent/ferry-spec", 1, true))
assert(err.retryable == false)
assert(err.location and err.location:find("errors_spec.lua:2", 1, true), tostring(err.location))
assert(tostring(err):find("[not_found]", 1, true))
-- String methods work on the error (older scripts match on messages).
assert(err:find("ferry-spec", 1, true))

local ok2, e2 = pcall(error, "plain message")
assert(not ok2 and e2.kind == "lua" and e2.message:find("plain message"))
assert(e2:match("plain") == "plain")

local ok3, e3 = pcall(ferry.fail, "unavailable", "server busy", {host = "db1"})
assert(not ok3 and e3.kind == "unavailable" and e3.retryable == true and e3.context.host == "db1")

local ok4, e4 = pcall(ferry.fail, "nonsense-kind", "x")
assert(not ok4 and e4.kind == "invalid_input")

-- xpcall handlers receive the structured error too.
local seen
xpcall(function() ferry.fail("timeout", "too slow") end, function(e) seen = e.kind end)
assert(seen == "timeout")

-- Undeclared parameter names are errors, declared unset ones are nil.
local p = ferry.params{{name = "present", type = "string", doc = "x"}}
assert(p.present == nil)
local ok5, e5 = pcall(function() return p.absent end)
assert(not ok5 and e5.message:find("parameter 'absent' is not declared"))
-- store.copy's map: a wrong return type names the key; an error inside map is the script's own.
local msrc = ferry.store.open("memory://map-err-src")
msrc:put("k1", "x")
local mdst = ferry.store.open("memory://map-err-dst")
local ok6, e6 = pcall(ferry.store.copy, msrc, mdst, {map = function() return 42 end})
assert(not ok6 and tostring(e6):find("map%('k1'%) returned a integer"), tostring(e6))
local ok7, e7 = pcall(ferry.store.copy, msrc, mdst, {keys = {"k1"}, map = function(k) error("bad key " .. k) end})
assert(not ok7 and tostring(e7):find("bad key k1"), tostring(e7))
local r8 = ferry.store.copy(msrc, mdst, {keys = {"k1"}, map = function() return nil end})
assert(r8.copied == 0 and mdst:head("k1") == nil)
print("errors ok")
