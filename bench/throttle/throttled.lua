-- One throttled copy between two local folders (file:// stores), for bench/throttle/run.sh.
--
--   ferry run bench/throttle/throttled.lua -q -p src=DIR -p dst=DIR -p series=FILE.tsv
--     [-p bytes_per_second=20000000] [-p objects_per_second=200]
--     [-p change_after=10 -p change_to=40000000] [-p concurrency=64]
--
-- The copy runs in one task. Another task samples the destination folder (ferry.fs.walk) about
-- every second and writes a time series to `series`: seconds since the copy started, bytes and
-- objects landed. With change_after, a third task sleeps that long and then calls
-- limiter:set_rate(change_to). Prints one JSON line: the copy's report figures, the copy's wall
-- time (taken around ferry.store.copy) and when the rate was changed.
local p = ferry.params{
  {name = "src", type = "path", required = true, doc = "source folder"},
  {name = "dst", type = "path", required = true, doc = "destination folder (created)"},
  {name = "series", type = "path", required = true, doc = "where to write the time series (TSV)"},
  {name = "bytes_per_second", type = "number", doc = "byte rate limit (ferry.throttle.new)"},
  {name = "objects_per_second", type = "number", doc = "object rate limit (ops_throttle)"},
  {name = "change_after", type = "number", doc = "seconds after the start to change the byte rate"},
  {name = "change_to", type = "number", doc = "the new byte rate"},
  {name = "concurrency", type = "integer", default = 64, doc = "copy concurrency"},
  {name = "sample_every", type = "number", default = 1, doc = "seconds between samples"},
}

-- ferry has no clock API with sub-second resolution: ask date(1). About 1 ms a call.
local function now()
  return tonumber(ferry.exec.run{"date", "+%s.%N", read_only = true}.stdout)
end

local src = ferry.store.open("file://" .. p.src)
local dst = ferry.store.open("file://" .. p.dst, {create = true})
local limiter = p.bytes_per_second and ferry.throttle.new{rate = p.bytes_per_second}

-- Bytes and objects under dst. Files being written are staged as `<key>#<n>` and renamed, so a
-- walk can trip over a file renamed under it: try again.
local function measure()
  for _ = 1, 5 do
    local ok, entries = pcall(ferry.fs.walk, p.dst)
    if ok then
      local bytes, files = 0, 0
      for _, e in ipairs(entries) do
        if not e.is_dir and not e.rel:find("#", 1, true) then
          bytes = bytes + e.size
          files = files + 1
        end
      end
      return bytes, files
    end
  end
  return nil
end

local t0 = now()
local done = false
local changed_at
local series = {"t\tbytes\tobjects"}

local sampler = ferry.task.spawn(function()
  local k = 0
  while not done do
    local t = now()
    local bytes, files = measure()
    if bytes and not done then
      series[#series + 1] = string.format("%.3f\t%d\t%d", t - t0, bytes, files)
    end
    k = k + 1
    -- Sleep to the next tick of the schedule, so that sampling time does not drift.
    local wait = t0 + k * p.sample_every - now()
    if wait > 0 then ferry.task.sleep(wait) end
  end
end)

local changer
if p.change_after then
  assert(limiter and p.change_to, "change_after needs bytes_per_second and change_to")
  changer = ferry.task.spawn(function()
    ferry.task.sleep(p.change_after)
    limiter:set_rate(p.change_to)
    changed_at = now() - t0
  end)
end

local copy = ferry.task.spawn(function()
  return ferry.store.copy(src, dst, {
    compare = "none",
    concurrency = p.concurrency,
    throttle = limiter,
    ops_throttle = p.objects_per_second,
  })
end)
local r = copy:join()
local t1 = now()
done = true
sampler:cancel()
if changer then changer:cancel() end
-- The last point: everything has landed.
series[#series + 1] = string.format("%.3f\t%d\t%d", t1 - t0, r.bytes, r.copied)
ferry.fs.write(p.series, table.concat(series, "\n") .. "\n")

print(ferry.json.encode({
  copied = r.copied, failed = r.failed, bytes = r.bytes, seconds = r.seconds,
  copy_wall = t1 - t0, changed_at = changed_at or false,
}))
