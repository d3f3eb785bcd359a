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
print("errors ok")
