-- N small GETs with bounded concurrency; prints how many succeeded.
local p = ferry.params{
  {name = "url", type = "url", required = true, doc = "URL to GET"},
  {name = "requests", type = "integer", default = 100000, doc = "number of requests"},
  {name = "concurrency", type = "integer", default = 64, doc = "requests in flight"},
}
local items = {}
for i = 1, p.requests do items[i] = i end
local ok = 0
ferry.task.parallel(items, {concurrency = p.concurrency}, function()
  local r = ferry.http.get(p.url, {retries = 0})
  if r.status == 200 then ok = ok + 1 end
end)
print(ok)
