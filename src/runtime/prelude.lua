-- ferry's Lua prelude: the parts of the runbook that are easiest to express in Lua itself.
-- It receives the runtime's internal functions and returns the public ones.
local rt = ...
local raw_xpcall = xpcall
local unpack, pack = table.unpack, table.pack
local capture, normalize = rt.capture, rt.normalize

-- pcall and xpcall hand scripts structured errors (err.kind, err.message, err.retryable ...).
function pcall(f, ...)
  return raw_xpcall(f, normalize, ...)
end

function xpcall(f, handler, ...)
  return raw_xpcall(f, function(e) return handler(normalize(e)) end, ...)
end

local M = {}

--- ferry.step(id, [title,] fn [, opts]): a journaled step.
function M.step(id, title, fn, opts)
  if type(title) == "function" then
    fn, opts, title = title, fn, nil
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("ferry.step '" .. tostring(id) .. "': options must be a table such as {always = true} or {sharded = true}", 2)
  end
  if type(id) ~= "string" or id == "" then
    error("ferry.step: the first argument must be a non-empty step id", 2)
  end
  if opts ~= nil then
    rt.check_step_options(opts)
  end
  if type(fn) ~= "function" then
    error("ferry.step '" .. id .. "': expected a function", 2)
  end
  local skipped, ctx = rt.step_begin(id, title or id, opts ~= nil and opts.always == true,
    opts ~= nil and opts.sharded == true)
  if skipped then
    return ctx -- the counters the step returned when it completed
  end
  local res = pack(raw_xpcall(fn, capture, ctx))
  if res[1] then
    rt.step_end(id, res[2])
    return unpack(res, 2, res.n)
  end
  local err = rt.step_failed(id, res[2])
  error(err, 0)
end

-- Runs fn protected, for tasks and the top level: true, results... or false, error.
function M.protect(fn, ...)
  return raw_xpcall(fn, capture, ...)
end

return M
