-- ferry.task: spawn/join, cancellation, poll with transient errors and timeout, parallel errors.
local h1 = ferry.task.spawn(function(a) ferry.task.sleep(0.02) return a * 2, "second" end, 21)
local h2 = ferry.task.spawn(function() ferry.task.sleep(0.01) return "b" end)
local a, second = h1:join()
assert(a == 42 and second == "second")
assert(h2:join() == "b")
assert(h1:join() == 42, "join twice returns the same result")

local bad = ferry.task.spawn(function() ferry.fail("conflict", "task failed") end)
local ok, err = pcall(function() return bad:join() end)
assert(not ok and err.kind == "conflict")

local forever = ferry.task.spawn(function() ferry.task.sleep(3600) end)
forever:cancel()
local ok2, err2 = pcall(function() return forever:join() end)
assert(not ok2 and err2.kind == "cancelled")

-- poll: transient errors are tolerated, the value is returned.
local calls = 0
local v = ferry.task.poll{every = 0.01, timeout = 5, describe = "status", check = function()
  calls = calls + 1
  if calls == 1 then ferry.fail("unavailable", "not JSON yet") end
  if calls < 4 then return false, {status = "Initializing"} end
  return "ReceivingFiles"
end}
assert(v == "ReceivingFiles" and calls == 4)

-- A custom transient predicate.
local n = 0
local v2 = ferry.task.poll{every = 0.01, timeout = 5, check = function()
  n = n + 1
  if n < 3 then error("blip") end
  return n
end, transient = function(e) return e.message:find("blip") ~= nil end}
assert(v2 == 3)

-- Non-transient errors stop the poll at once.
local ok3, err3 = pcall(ferry.task.poll, {every = 0.01, timeout = 5, check = function()
  ferry.fail("auth", "401 Unauthorized")
end})
assert(not ok3 and err3.kind == "auth")

-- Timeout names what it waited for and the last observed state.
local ok4, err4 = pcall(ferry.task.poll, {every = 0.01, timeout = 0.05, describe = "migration to finish",
  check = function() return false, {status = "ImportInProgress"} end})
assert(not ok4 and err4.kind == "timeout")
assert(err4.message:find("migration to finish", 1, true))
assert(err4.message:find("ImportInProgress", 1, true))

-- parallel: the first error is raised after running items finish; fail_fast stops new ones.
local started = 0
local ok5, err5 = pcall(ferry.task.parallel, {1, 2, 3, 4, 5, 6}, {concurrency = 1}, function(x)
  started = started + 1
  if x == 2 then ferry.fail("io", "item two broke") end
end)
assert(not ok5 and err5.kind == "io" and err5.context.item == "2")
assert(started == 2, "fail_fast stops scheduling: started " .. started)
local all = 0
local ok6, err6 = pcall(ferry.task.parallel, {1, 2, 3, 4}, {concurrency = 2, fail_fast = false}, function(x)
  all = all + 1
  if x % 2 == 0 then error("even " .. x) end
end)
assert(not ok6 and all == 4 and err6.message:find("2 of 4 items failed"))
print("task ok")
