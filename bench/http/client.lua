-- N small GETs with bounded concurrency, for bench/http/run.sh:
--
--   ferry run bench/http/client.lua -q -p url=http://127.0.0.1:18080/ok -p requests=100000 -p concurrency=64
--
-- Every request is a plain ferry.http.get(url) (default options: retries, timeout) run by
-- ferry.task.parallel. Prints one JSON line: how many answered 200, how many did not or raised,
-- and how many needed more than one attempt. requests=0 measures the process's start-up.
local p = ferry.params{
  {name = "url", type = "url", required = true, doc = "URL to GET"},
  {name = "requests", type = "integer", default = 100000, doc = "number of requests"},
  {name = "concurrency", type = "integer", default = 64, doc = "requests in flight"},
}
local items = {}
for i = 1, p.requests do items[i] = i end
local ok, failed, retried, bytes = 0, 0, 0, 0
ferry.task.parallel(items, {concurrency = p.concurrency, fail_fast = false}, function()
  local good, r = pcall(ferry.http.get, p.url)
  if good and r.status == 200 then
    ok = ok + 1
    bytes = bytes + #r.body
    if r.attempts > 1 then retried = retried + 1 end
  else
    failed = failed + 1
  end
end)
print(ferry.json.encode({ok = ok, failed = failed, retried = retried, body_bytes = bytes}))
