-- Apache Pegasus duplication and cut-over as upstream's own code does them: query_dup -d's JSON,
-- the replica servers' /replica/duplication, the drain proof (confirmed decree == last committed
-- decree on every partition), and the 2.5-and-older perf-counter snapshot that no other reader
-- can zero. Upstream files (apache/incubator-pegasus) are cited beside each rule.
local M = {}

local json = ferry.json
local pegasus = require "ferry.pegasus"

--- query_dup -d's answer -> {appid, dups = {dupid -> entry}}, or nil when the output has none.
--- src/common/duplication_common.cpp duplication_query_response_to_string (v2.4:
--- src/rdsn/src/common/): the JSON keys entries by a sequence number (json[std::to_string(i)],
--- i = 1, 2, ...), NOT by dupid; the dupid is the entry's "dupid" field. A table without
--- duplications prints `null` (nothing was assigned), which means no duplication.
function M.parse_query_dup(text)
  local after_header = false
  for line in pegasus.strip_ansi(text):gmatch("[^\n]+") do
    if line:find("^duplications of app %[.-%] in detail:") then
      after_header = true
    elseif after_header and line:match("^%s*null%s*$") then
      return {dups = {}}
    elseif line:match("^%s*{") then
      local ok, v = pcall(json.decode, line)
      if ok and type(v) == "table" and (v.appid ~= nil or after_header) then
        local dups = {}
        for k, e in pairs(v) do
          if k ~= "appid" and type(e) == "table" and e.dupid ~= nil then dups[tostring(math.tointeger(e.dupid) or e.dupid)] = e end
        end
        return {appid = v.appid, dups = dups}
      end
    end
  end
  return nil
end

--- How far a 2.6 entry lags: {lag = max(last_committed - confirmed), partitions = count,
--- drained}, or nil without partition_states (2.5 and older; duplication_common.cpp
--- duplication_entry_to_json prints them only when __isset, which 2.6 meta servers set).
function M.entry_drain(entry, partition_count)
  if type(entry.partition_states) ~= "table" then return nil end
  local lag, seen = 0, 0
  for _, s in pairs(entry.partition_states) do
    seen = seen + 1
    local d = (tonumber(s.last_committed_decree) or 0) - (tonumber(s.confirmed_decree) or 0)
    if d > lag then lag = d end
  end
  return {lag = lag, partitions = seen, drained = lag == 0 and seen >= (partition_count or seen)}
end

--- The replica servers' view of one duplication (2.4 and later):
--- GET /replica/duplication?appid=N on each node (src/replica/replica_http_service.cpp
--- query_duplication_handler; v2.4.0 src/rdsn/src/replica/replica_http_service.cpp:27-70)
--- answers, for the table's primaries on that node, {"<dupid>": {"<appid>.<pidx>":
--- {"not_confirmed_mutations_num": last_committed_decree - confirmed_decree, ...}}}
--- (duplication_sync_timer.cpp get_dup_states); 404 "no primary for app [appid=N]" when the node
--- holds no primary of the table, 404 "no duplication assigned for app [appid=N]" when its
--- primaries hold no duplication at all, 404 "duplication is not enabled ..." when the server
--- runs without [replication] duplication_enabled. -> {lag (max over partitions), partitions
--- (primaries seen), drained (every partition seen and at 0), absent (no node holds the
--- duplication, and some node with primaries of the table answered without it), says (that
--- node's answer)}.
function M.replica_drain(nodes, app_id, dupid, partition_count)
  local seen, lag, without, says = {}, 0, 0, nil
  for _, addr in ipairs(nodes) do
    local r = ferry.http.get("http://" .. addr .. "/replica/duplication", {query = {appid = tostring(app_id)}, timeout = 10, retries = 2})
    local body = tostring(r.body or "")
    if r.status == 200 then
      local ok, v = pcall(function() return r:json() end)
      local mine = ok and type(v) == "table" and v[tostring(dupid)] or nil
      if mine == nil then
        without, says = without + 1, says or ("%s answers duplications %s only"):format(addr, body)
      end
      for gpid, s in pairs(mine or {}) do
        seen[gpid] = true
        local n = tonumber(s.not_confirmed_mutations_num) or 0
        if n > lag then lag = n end
      end
    elseif r.status == 404 and body:find("no duplication assigned", 1, true) then
      without, says = without + 1, says or ("%s answers %q"):format(addr, body)
    elseif r.status == 404 and body:find("duplication is not enabled", 1, true) then
      ferry.fail("unavailable", ("%s/replica/duplication: %s"):format(addr, body),
        {hint = "set [replication] duplication_enabled = true on every replica server of the source and restart them"})
    elseif r.status ~= 404 then
      ferry.fail("unavailable", ("%s/replica/duplication?appid=%s answered %d: %s"):format(addr, app_id, r.status, body))
    end
  end
  local n = 0
  for _ in pairs(seen) do n = n + 1 end
  return {lag = lag, partitions = n, drained = lag == 0 and n >= partition_count,
          absent = n == 0 and without > 0, says = says}
end

--- The table's data version on the replica servers, as admin-cli's table-migrator checks it
--- before it adds the duplication (admin-cli/executor/toolkits/tablemigrator/migrator.go
--- MigrateTable step 1, v2.5.0 :39-47: `version.DataVersion != "1"` -> "not support migrate table
--- with data_version = %s by duplication"; executor/table_version.go QueryReplicaDataVersion,
--- v2.5.0 :47-84: GET /replica/data_version?app_id=N on every replica server, all replicas must
--- agree). A node answers {"<pidx>": {"data_version": "<n>"}} for the replicas it holds, or 404
--- "app_id=N not found" when it holds none (src/replica/replica_http_service.cpp
--- query_app_data_version_handler, v2.5.0 :84-119); upstream's admin-cli fails on that 404
--- (util/http_client.go CallHTTPGet: any status but 200 is an error), ferry skips the node.
--- -> {versions = {"<n>" -> {"<addr>/<pidx>", ...}}, count = distinct versions, replicas}.
function M.data_versions(nodes, app_id)
  local versions, count, replicas = {}, 0, 0
  for _, addr in ipairs(nodes) do
    local r = ferry.http.get("http://" .. addr .. "/replica/data_version", {query = {app_id = tostring(app_id)}, timeout = 10, retries = 2})
    if r.status == 200 then
      local ok, v = pcall(function() return r:json() end)
      if not ok or type(v) ~= "table" then
        ferry.fail("unavailable", ("%s/replica/data_version?app_id=%s answered no JSON: %s"):format(addr, app_id, tostring(r.body)))
      end
      for pidx, e in pairs(v) do
        local dv = type(e) == "table" and tostring(e.data_version) or "?"
        if not versions[dv] then versions[dv], count = {}, count + 1 end
        table.insert(versions[dv], addr .. "/" .. tostring(pidx))
        replicas = replicas + 1
      end
    elseif r.status ~= 404 then
      ferry.fail("unavailable", ("%s/replica/data_version?app_id=%s answered %d: %s"):format(addr, app_id, r.status, tostring(r.body)))
    end
  end
  return {versions = versions, count = count, replicas = replicas}
end

--- The drain state of a duplication: 2.6 entries carry partition_states; older ones are read
--- from the replica servers.
function M.drain(entry, nodes, app, dupid)
  return M.entry_drain(entry, app.partition_count) or M.replica_drain(nodes, app.app_id, dupid, app.partition_count)
end

---------------------------------------------------------------------------------------------------
-- 2.5 and older: perf-counters read from the server's snapshot
---------------------------------------------------------------------------------------------------
-- perf_counter/perf_counter_atomic.h: get_value() of a VOLATILE_NUMBER counter (recent.*.fail.count,
-- dup.disabled_non_idempotent_write_count@<app>) exchanges it with 0, and a RATE counter (the
-- <op>_qps@<app>.<pidx> counters) resets too. GET /perfCounter calls get_value()
-- (http/perf_counter_http_service.cpp), and so does the server's own reporter every
-- perf_counter_update_interval_seconds (10 s; reporter/pegasus_counter_reporter.cpp update() ->
-- take_snapshot()): a /perfCounter read sees what accumulated since ANY reader last read, and
-- takes it from the site's monitoring. `remote_command perf-counters-by-substr` returns the
-- reporter's last snapshot (perf_counters.cpp list_snapshot_by_literal), which no reader zeroes;
-- each snapshot holds one interval's count, stamped with its time.

--- One snapshot per replica server: runs `remote_command -t replica-server
--- perf-counters-by-substr <substrs...>` through `shell` (a function taking a list of shell
--- commands and returning pegasus.shell's result) and parses each node's message (2.5:
--- "CALL [replica-server] [addr] succeed: {json}") -> {addr -> {timestamp, values = {name -> v}}}.
function M.snapshots(shell, substrs)
  local r = shell({"remote_command -t replica-server perf-counters-by-substr " .. table.concat(substrs, " ")})
  local out = {}
  for addr, status, msg in r.text:gmatch("CALL %[[^%]]*%] %[([^%]]+)%] (%a+): ([^\n]*)") do
    if status == "succeed" then
      local ok, v = pcall(json.decode, msg)
      if ok and type(v) == "table" and v.result == "OK" then
        local values = {}
        for _, c in ipairs(v.counters or {}) do values[c.name] = tonumber(c.value) or 0 end
        out[addr] = {timestamp = v.timestamp, values = values}
      end
    end
  end
  if next(out) == nil then
    ferry.fail("exec", "remote_command perf-counters-by-substr answered no snapshot: " .. (r.failures[1] or tostring(r.text):sub(-300)))
  end
  return out
end

--- Sums `names` over the snapshots the servers take during `window` seconds (polled every
--- `every`), counting each node's snapshot once (by its timestamp) and leaving out the one that
--- was current at the start (it covers time before the window). Waits past the window until each
--- node has published a new snapshot, at most `interval` * 2 more (the reporter's period).
--- -> {sums = {name -> total}, snapshots = new snapshots seen, nodes}.
function M.sum_snapshots(shell, substrs, names, window, interval, every)
  local first = M.snapshots(shell, substrs)
  local last_ts, sums, fresh, seen_nodes = {}, {}, {}, 0
  for addr, s in pairs(first) do last_ts[addr] = s.timestamp; seen_nodes = seen_nodes + 1 end
  for _, n in ipairs(names) do sums[n] = 0 end
  local waited, count = 0, 0
  while true do
    ferry.task.sleep(every)
    waited = waited + every
    for addr, s in pairs(M.snapshots(shell, substrs)) do
      if s.timestamp ~= last_ts[addr] then
        last_ts[addr] = s.timestamp
        fresh[addr] = true
        count = count + 1
        for _, n in ipairs(names) do sums[n] = sums[n] + (s.values[n] or 0) end
      end
    end
    local all_fresh = true
    for addr in pairs(first) do if not fresh[addr] then all_fresh = false end end
    if waited >= window and all_fresh then break end
    if waited >= window + 2 * interval then
      ferry.fail("timeout", ("no new perf-counter snapshot on every replica server within %d s; is " ..
        "[pegasus.server] perf_counter_update_interval_seconds longer than -p counter_interval=%d?"):format(
        math.floor(waited), interval))
    end
  end
  return {sums = sums, snapshots = count, nodes = seen_nodes}
end

return M
