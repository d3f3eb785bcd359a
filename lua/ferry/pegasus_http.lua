-- Apache Pegasus over HTTP: the meta server's and replica servers' endpoints [§6, §8] (the HTTP
-- server reuses the RPC port [§6.1]), metric names old and new, and a table's request rates.
-- Sections in brackets cite ../shared/reference/pegasus.md. Installed into ferry.pegasus (M) by
-- require("ferry.pegasus_http")(M).
return function(M)

  local function list(metas)
    local out = {}
    for m in tostring(metas):gmatch("[^,%s]+") do out[#out + 1] = m end
    return out
  end
  M.addresses = list

  --- GET a meta endpoint, trying each meta (standby metas answer 307, which is followed [§6.1]).
  --- Returns the response of the first meta that answers.
  function M.meta_get(metas, path, query)
    local last
    for _, m in ipairs(list(metas)) do
      local ok, r = pcall(ferry.http.get, "http://" .. m .. path, {query = query, timeout = 10, retries = 1})
      if ok then return r end
      last = r
    end
    ferry.fail("unavailable", ("no meta server of %s answers %s: %s"):format(metas, path,
      type(last) == "table" and last.message or tostring(last)))
  end

  --- /meta/app?name=X&detail [§8.2] -> {app_id, partition_count, unhealthy, ...}, or nil if absent.
  function M.app_info(metas, name)
    local r = M.meta_get(metas, "/meta/app", {name = name, detail = ""})
    if r.status == 404 then return nil end
    if r.status ~= 200 then
      ferry.fail("unavailable", ("/meta/app?name=%s on %s answered %d: %s"):format(name, metas, r.status, r.body))
    end
    local v = r:json()
    local g = v.general or {}
    local h = v.healthy or {}
    return {name = g.app_name, app_id = tonumber(g.app_id), partition_count = tonumber(g.partition_count),
            replica_count = tonumber(g.max_replica_count), unhealthy = tonumber(h.unhealthy_partition_count or "0"),
            write_unhealthy = tonumber(h.write_unhealthy_partition_count or "0")}
  end

  --- /meta/nodes [§8.2] -> sorted list of replica server addresses (host:port, also their HTTP port).
  function M.nodes(metas)
    local r = M.meta_get(metas, "/meta/nodes")
    if r.status ~= 200 then ferry.fail("unavailable", ("/meta/nodes on %s answered %d"):format(metas, r.status)) end
    local out = {}
    for addr, d in pairs(r:json().details or {}) do
      if d.status == nil or d.status == "ALIVE" then out[#out + 1] = addr end
    end
    table.sort(out)
    return out
  end

  --- /meta/app_envs?name=X [§8.2] -> {key = value}.
  function M.app_envs(metas, name)
    local r = M.meta_get(metas, "/meta/app_envs", {name = name})
    if r.status ~= 200 then
      ferry.fail("unavailable", ("/meta/app_envs?name=%s on %s answered %d: %s"):format(name, metas, r.status, r.body))
    end
    return r:json()
  end

  --- GET /updateConfig?key=value on one server [§8.3]; fails unless the status says ok.
  function M.update_config(addr, key, value)
    if ferry.dry_run() then
      ferry.log.info(("dry run: would set %s=%s on %s (/updateConfig)"):format(key, value, addr))
      return
    end
    local r = ferry.http.get("http://" .. addr .. "/updateConfig", {query = {[key] = tostring(value)}, timeout = 10})
    local ok, v = pcall(function() return r:json() end)
    local status = ok and type(v) == "table" and tostring(v.update_status) or ("HTTP " .. r.status .. " " .. r.body)
    if r.status ~= 200 or not (status:upper() == "OK" or status:upper() == "ERR_OK") then
      ferry.fail("unavailable", ("setting %s=%s on %s failed: %s"):format(key, value, addr, status))
    end
  end

  -- Metric names, old and new [§3.7, §5.6].
  M.METRICS = {
    upload_max_bytes = {perf = "replica*eon.replica_stub*cold.backup.max.upload.file.size",
                        new = "backup_file_upload_max_bytes", entity = "replica"},
    read_fail = {perf = "replica*eon.replica_stub*recent.read.fail.count", new = "read_failed_requests",
                 entity = "server", cumulative_new = true},
    write_fail = {perf = "replica*eon.replica_stub*recent.write.fail.count", new = "write_failed_requests",
                  entity = "server", cumulative_new = true},
    dup_pending = {perf = "replica*eon.replica_stub*dup.pending_mutations_count", new = "dup_pending_mutations",
                   entity = "replica"},
  }

  --- The name of a metric as this version shows it (perf-counter suffix before 2.6).
  function M.metric_name(version, metric)
    if M.has_new_metrics(version) then return metric.new end
    return (metric.perf:gsub("^.*%*", ""))
  end

  --- One metric of one server: 2.6 `/metrics?types=..&metrics=..` (max over its entities, which
  --- for replica-level metrics reproduces the old server-level max [§3.7]), older
  --- `/perfCounter?name=<full name>` [§6.3]. Returns a number.
  function M.metric(addr, version, metric, opts)
    opts = opts or {}
    if M.has_new_metrics(version) then
      local r = ferry.http.get("http://" .. addr .. "/metrics",
        {query = {types = metric.entity, metrics = metric.new}, timeout = 10, retries = 2})
      if r.status ~= 200 then
        ferry.fail("unavailable", ("%s/metrics answered %d: %s"):format(addr, r.status, r.body))
      end
      local best, sum = 0, 0
      for _, e in ipairs(r:json().entities or {}) do
        if not opts.table_id or (e.attributes and tostring(e.attributes.table_id) == tostring(opts.table_id)) then
          for _, m in ipairs(e.metrics or {}) do
            if m.name == metric.new and type(m.value) == "number" then
              sum = sum + m.value
              if m.value > best then best = m.value end
            end
          end
        end
      end
      return opts.sum and sum or best
    end
    local name = metric.perf .. (opts.suffix or "")
    local r = ferry.http.get("http://" .. addr .. "/perfCounter", {query = {name = name}, timeout = 10, retries = 2})
    if r.status ~= 200 then
      ferry.fail("unavailable", ("%s/perfCounter?name=%s answered %d: %s"):format(addr, name, r.status, r.body))
    end
    return tonumber(r:json().value) or 0
  end

  --- The metric over every node: {max, sum, by_node}.
  function M.cluster_metric(nodes, version, metric, opts)
    local out = {max = 0, sum = 0, by_node = {}}
    for _, n in ipairs(nodes) do
      local v = M.metric(n, version, metric, opts)
      out.by_node[n] = v
      out.sum = out.sum + v
      if v > out.max then out.max = v end
    end
    return out
  end

  M.METRICS.non_idempotent = {perf = "replica*eon.replica*dup.disabled_non_idempotent_write_count",
                              new = "dup_rejected_non_idempotent_write_requests", entity = "replica", cumulative_new = true}

  -- Client request metrics of a table. Not in the reference: ferry's reading of Pegasus' counters
  -- (2.6: replica-entity counters `<op>_requests`; 2.5: per-partition perf-counters
  -- `replica*app.pegasus*<op>_qps@<app_id>.<pidx>`, already per second). Procedures take them as a
  -- parameter so a site can correct them.
  M.REQUEST_OPS = {"get", "multi_get", "batch_get", "put", "multi_put", "remove", "multi_remove", "incr",
                   "check_and_set", "check_and_mutate", "scan"}

  --- One sample of a table's client requests on the given nodes: 2.6 -> {total = cumulative count},
  --- older -> {rate = requests per second}.
  function M.table_requests(nodes, version, app, ops)
    ops = ops or M.REQUEST_OPS
    if M.has_new_metrics(version) then
      local names = {}
      for i, op in ipairs(ops) do names[i] = op .. "_requests" end
      local totals = ferry.task.parallel(nodes, {concurrency = 8}, function(addr)
        local r = ferry.http.get("http://" .. addr .. "/metrics",
          {query = {types = "replica", metrics = table.concat(names, ",")}, timeout = 10, retries = 2})
        if r.status ~= 200 then ferry.fail("unavailable", ("%s/metrics answered %d: %s"):format(addr, r.status, r.body)) end
        local sum = 0
        for _, e in ipairs(r:json().entities or {}) do
          if e.attributes and tostring(e.attributes.table_id) == tostring(app.app_id) then
            for _, mt in ipairs(e.metrics or {}) do
              if type(mt.value) == "number" then sum = sum + mt.value end
            end
          end
        end
        return sum
      end)
      local total = 0
      for _, v in ipairs(totals) do total = total + v end
      return {total = total}
    end
    local jobs = {}
    for _, addr in ipairs(nodes) do
      for pidx = 0, app.partition_count - 1 do
        for _, op in ipairs(ops) do
          jobs[#jobs + 1] = {addr = addr, name = ("replica*app.pegasus*%s_qps@%d.%d"):format(op, app.app_id, pidx)}
        end
      end
    end
    local values = ferry.task.parallel(jobs, {concurrency = 16}, function(j)
      local r = ferry.http.get("http://" .. j.addr .. "/perfCounter", {query = {name = j.name}, timeout = 10, retries = 2})
      if r.status ~= 200 then return 0 end
      return tonumber(r:json().value) or 0
    end)
    local rate = 0
    for _, v in ipairs(values) do rate = rate + v end
    return {rate = rate}
  end

  --- A table's requests per second over `window` seconds (two samples on 2.6, their mean before).
  function M.table_qps(nodes, version, app, window, ops)
    -- Lua has no sub-second clock here: the window is the sleep between the samples.
    local a = M.table_requests(nodes, version, app, ops)
    ferry.task.sleep(window)
    local b = M.table_requests(nodes, version, app, ops)
    if a.total then return (b.total - a.total) / math.max(window, 0.001) end
    return (a.rate + b.rate) / 2
  end
end
