-- Move a Pegasus table to another cluster online: duplication, MetaProxy switch, source blocked, verified.
--
-- The vendor procedure "Online (Hot) Migration" as a runbook: confirm every client goes through
-- MetaProxy, set up duplication from the source table to the target (with its checkpoint), wait
-- until it has caught up, confirm the switch, point MetaProxy's ZooKeeper node at the target (a
-- configurable command), block client requests on the SOURCE table (the doc's snippet says
-- `use TableB`, its text and admin-cli's table-migrator block the source) so clients refresh their
-- route, then verify as the doc says: source QPS falls to zero, target QPS matches, non-idempotent
-- write rejections and read/write failures stay at zero on both clusters. See
-- docs/procedures/pegasus.md.

local pegasus = require "ferry.pegasus"

local p = ferry.params{
  {name = "shell", type = "string", required = true,
   doc = "the Pegasus shell command for the source cluster, run by sh (`pegasus_shell config.ini ClusterA`)"},
  {name = "source_cluster", type = "string", required = true, doc = "the source cluster's name"},
  {name = "source_table", type = "string", required = true, doc = "the table to migrate"},
  {name = "target_cluster", type = "string", required = true,
   doc = "the target cluster, as named in the source servers' [pegasus.clusters] and duplication-group"},
  {name = "target_table", type = "string", doc = "the table on the target (default: source_table; another name needs 2.6's add_dup -a)"},
  {name = "checkpoint", type = "boolean", default = true,
   doc = "duplicate the checkpoint too (add_dup -s: the target table must not exist, it is created); false: incremental only, the target table must exist"},
  {name = "zk_command", type = "string",
   doc = "updates MetaProxy's ZooKeeper node of the table; placeholders {table} {cluster} {metas} {value} (the node's JSON), " ..
     "e.g. `zkCli.sh -server zk:2181 set /metaproxy/{table} {value}`; default: ask the operator to do it"},
  {name = "shell_config", type = "path", doc = "the shell's config.ini (default: read from the shell command)"},
  {name = "shell_cwd", type = "path", doc = "the folder the shell runs in (default: the current folder)"},
  {name = "pegasus_version", type = "string",
   doc = "the Pegasus version (2.3 .. 2.6) when the shell's banner does not tell it, or to override it"},
  {name = "source_meta", type = "string", doc = "source meta servers (default: the shell's banner)"},
  {name = "target_meta", type = "string", doc = "target meta servers (default: [pegasus.clusters] of the shell's config)"},
  {name = "max_lag", type = "integer", default = 1000,
   doc = "caught up when every partition's last_committed - confirmed decree (2.6), or the source's pending duplication mutations (older), is at most this"},
  {name = "deny", type = "string", default = "reconfig*all", choices = {"reconfig*all", "reconfig*write", "timeout*all", "timeout*write"},
   doc = "replica.deny_client_request set on the source (reconfig answers ERR_INVALID_STATE, so clients refresh at once)"},
  {name = "settle", type = "duration", default = "60s",
   doc = "wait after blocking the source before verifying (app envs reach replicas within config_sync_interval_ms, ~30 s)"},
  {name = "verify_window", type = "duration", default = "30s", doc = "QPS and failure counters are sampled this far apart"},
  {name = "qps_tolerance", type = "number", default = 0.2, doc = "the target's QPS may fall short of the source's earlier QPS by this fraction"},
  {name = "request_ops", type = "list", default = table.concat(pegasus.REQUEST_OPS, ","),
   doc = "operations whose request counters make up QPS (<op>_requests on 2.6, <op>_qps perf-counters before)"},
  {name = "poll_interval", type = "duration", default = "10s", doc = "how often to query the duplication"},
  {name = "catch_up_timeout", type = "duration", default = "24h", doc = "give up waiting for the duplication to catch up after this long"},
}

local target_table = p.target_table or p.source_table
local cwd = p.shell_cwd
local banner, version = pegasus.probe(p.shell, p.source_cluster, {cwd = cwd, forced = p.pegasus_version})
if not pegasus.at_least(version, "2.4") then
  ferry.fail("usage", ("online migration needs duplication from Pegasus 2.4 on; the shell is %s"):format(version.text),
    {hint = "use pegasus-cold-backup with -p method=ingest_behind (dual writes) instead"})
end
local dup_command = pegasus.add_dup_command(version, p.source_table, p.target_cluster,
  {checkpoint = p.checkpoint, remote_app = target_table})
if p.source_cluster == p.target_cluster then ferry.fail("usage", "source and target cluster are the same") end

local site = pegasus.locate({shell = p.shell, shell_config = p.shell_config, source_cluster = p.source_cluster,
  target_cluster = p.target_cluster, source_meta = p.source_meta, target_meta = p.target_meta, target_shell = nil}, banner, cwd)
local config_path, source_meta, target_meta = site.config_path, site.source_meta, site.target_meta
if not target_meta then
  ferry.fail("usage", ("cannot tell %s's meta servers: give -p target_meta=host:port,... or add it to [pegasus.clusters] of %s"):format(
    p.target_cluster, tostring(config_path)))
end

local function shell(commands, opts)
  opts = opts or {}
  opts.cwd = cwd
  return pegasus.shell(p.shell, commands, opts)
end

local function app_or_fail(metas, cluster, tbl)
  local app = pegasus.app_info(metas, tbl)
  if not app then ferry.fail("not_found", ("%s has no table %s (%s)"):format(cluster, tbl, metas)) end
  return app
end

local function query_dup()
  local r = shell({"query_dup -d " .. pegasus.arg(p.source_table)}, {read_only = true})
  if r.dry_run then return nil, r end
  return pegasus.parse_query_dup(r.text), r
end

local function find_dup(q)
  for id, e in pairs(q and q.dups or {}) do
    if e.remote == p.target_cluster then return id, e end
  end
end

ferry.step("metaproxy-clients", "Route all clients through MetaProxy (no direct MetaServer addresses)", function()
  ferry.confirm(("Do all clients of %s reach Pegasus through MetaProxy, with no MetaServer addresses of %s configured? " ..
    "(C++ and Python clients cannot use MetaProxy.)"):format(p.source_table, p.source_cluster))
end)

ferry.step("start-duplication", "Start hot backup: duplication from the source table to the target", function()
  local src = app_or_fail(source_meta, p.source_cluster, p.source_table)
  local existing_id = find_dup((query_dup()))
  if existing_id then
    ferry.log.info(("%s already duplicates to %s (dupid %s)"):format(p.source_table, p.target_cluster, existing_id))
    ferry.state.set("dupid", existing_id)
    return {dupid = existing_id}
  end
  local dst = pegasus.app_info(target_meta, target_table)
  if p.checkpoint and dst then
    ferry.fail("conflict", ("%s already has a table %s; duplicating the checkpoint (add_dup -s) creates it"):format(
      p.target_cluster, target_table), {hint = "drop it, or use -p checkpoint=false to ship new writes only (the data already there must be complete)"})
  elseif not p.checkpoint and not dst then
    ferry.fail("not_found", ("%s has no table %s; without the checkpoint, duplication only ships new writes into an existing table"):format(
      p.target_cluster, target_table), {hint = "use -p checkpoint=true, or create the table and load its data first"})
  end
  local r = shell({dup_command})
  if r.dry_run then return end
  local added = pegasus.parse_add_dup(r.text)
  if not added or not added.dupid then
    local again = find_dup((query_dup()))
    if not again then
      ferry.fail("exec", ("%s failed: %s"):format(dup_command, r.failures[1] or pegasus.tail(r.text, 3)),
        {hint = "both clusters need [replication] duplication_enabled = true and each other in [pegasus.clusters] and [duplication-group]"})
    end
    added = {dupid = again}
  end
  ferry.log.info(("duplication %s: %s -> %s.%s (app id %d)"):format(added.dupid, p.source_table, p.target_cluster, target_table, src.app_id))
  ferry.state.set("dupid", added.dupid)
  return {dupid = added.dupid, checkpoint = p.checkpoint}
end)

ferry.step("wait-duplication", "Wait until the duplication has caught up", function()
  if ferry.dry_run() then return end
  local dupid = ferry.state.get("dupid")
  local src_nodes = pegasus.nodes(source_meta)
  local last = ferry.task.poll{every = p.poll_interval, timeout = p.catch_up_timeout, describe = "duplication " .. dupid .. " to catch up",
    check = function()
      local q, r = query_dup()
      if not q then return false, r.failures[1] or "no query_dup answer" end
      local e = q.dups[tostring(dupid)]
      if not e then return {gone = true} end -- failed below: poll retries retryable errors
      if e.status ~= "DS_LOG" then return false, e.status end
      local lag = pegasus.dup_lag(e)
      local how = "decrees behind"
      if not lag then
        -- No partition_states before 2.6: the pending mutations, as admin-cli's table-migrator does.
        lag = pegasus.cluster_metric(src_nodes, version, pegasus.METRICS.dup_pending).sum
        how = "pending mutations"
      end
      ferry.log.info(("duplication %s: %s, %d %s"):format(dupid, e.status, lag, how))
      if lag <= p.max_lag then return {lag = lag, how = how} end
      return false, ("%d %s"):format(lag, how)
    end}
  if last.gone then
    ferry.fail("not_found", ("duplication %s of %s is gone (removed?)"):format(dupid, p.source_table),
      {hint = "run again with --from-step start-duplication"})
  end
  -- The source's QPS now is what the target must reach after the switch.
  local src = app_or_fail(source_meta, p.source_cluster, p.source_table)
  local qps = pegasus.table_qps(src_nodes, version, src, p.verify_window, p.request_ops)
  ferry.state.set("baseline_qps", qps)
  ferry.log.info(("caught up (%d %s); %s serves %.1f requests/s"):format(last.lag, last.how, p.source_table, qps))
  return {lag = last.lag, source_qps = math.floor(qps + 0.5)}
end)

ferry.step("confirm-switch", "Confirm the switch to the target cluster", function()
  ferry.confirm(("Duplication has caught up. Switch %s's clients to %s.%s now? MetaProxy will point at %s and the source table " ..
    "will refuse client requests (%s)."):format(p.source_table, p.target_cluster, target_table, target_meta, p.deny))
end)

ferry.step("switch-zookeeper", "Switch MetaProxy in ZooKeeper to the target's meta servers", function()
  -- MetaProxy's node per table: {"cluster_name": ..., "meta_addrs": "m1,m2"} [reference §5.5].
  local value = ferry.json.encode({cluster_name = p.target_cluster, meta_addrs = target_meta})
  if p.zk_command then
    local cmd = pegasus.fill(p.zk_command, {table = p.source_table, cluster = p.target_cluster, metas = target_meta, value = value},
      "zk_command")
    ferry.log.info("updating MetaProxy's ZooKeeper node: " .. cmd)
    ferry.exec.run{"sh", "-c", cmd, cwd = cwd}
  else
    ferry.confirm(("Set MetaProxy's ZooKeeper node of %s (<root>/%s) to %s. Done?"):format(p.source_table, p.source_table, value))
  end
  return {cluster = p.target_cluster}
end)

ferry.step("block-source", "Refresh topology: block client requests on the SOURCE table", function()
  local r = shell({"use " .. pegasus.arg(p.source_table), "set_app_envs replica.deny_client_request " .. p.deny})
  if r.dry_run then return end
  -- `use` does not check the table and the shell exits 0 anyway: read the env back [§7.2, §8.2].
  local envs = pegasus.app_envs(source_meta, p.source_table)
  if envs["replica.deny_client_request"] ~= p.deny then
    ferry.fail("exec", ("set_app_envs replica.deny_client_request %s on %s did not take: %s"):format(p.deny, p.source_table,
      r.failures[1] or pegasus.tail(r.text, 3)))
  end
  ferry.log.info(("%s.%s refuses client requests (%s); clients re-resolve through MetaProxy"):format(p.source_cluster, p.source_table, p.deny))
  return {deny = p.deny}
end)

ferry.step("verify", "Verify: source QPS 0, target QPS matches, failure counters stay 0", function()
  if ferry.dry_run() then return end
  ferry.task.sleep(p.settle)
  local src = app_or_fail(source_meta, p.source_cluster, p.source_table)
  local dst = app_or_fail(target_meta, p.target_cluster, target_table)
  local sides = {
    {name = p.source_cluster, nodes = pegasus.nodes(source_meta), app = src, tbl = p.source_table},
    {name = p.target_cluster, nodes = pegasus.nodes(target_meta), app = dst, tbl = target_table},
  }
  local watched = {"non_idempotent", "read_fail", "write_fail"}
  local function counters(side)
    local out = {}
    for _, key in ipairs(watched) do
      local suffix = key == "non_idempotent" and ("@" .. side.tbl) or nil
      out[key] = pegasus.cluster_metric(side.nodes, version, pegasus.METRICS[key],
        {suffix = suffix, sum = true, table_id = key == "non_idempotent" and side.app.app_id or nil}).sum
    end
    return out
  end
  local before = {counters(sides[1]), counters(sides[2])}
  -- The QPS windows of both sides run at once; they also separate the two counter samples.
  local qps = ferry.task.parallel(sides, {concurrency = 2}, function(side)
    return pegasus.table_qps(side.nodes, version, side.app, p.verify_window, p.request_ops)
  end)
  local after = {counters(sides[1]), counters(sides[2])}
  local baseline = ferry.state.get("baseline_qps") or 0
  local problems = {}
  ferry.log.info(("QPS: %s.%s %.1f, %s.%s %.1f (before the switch: %.1f)"):format(p.source_cluster, p.source_table, qps[1],
    p.target_cluster, target_table, qps[2], baseline))
  if qps[1] > 0 then
    problems[#problems + 1] = ("%s.%s still serves %.1f requests/s (clients that bypass MetaProxy?)"):format(p.source_cluster,
      p.source_table, qps[1])
  end
  if baseline > 0 and qps[2] < baseline * (1 - p.qps_tolerance) then
    problems[#problems + 1] = ("%s.%s serves %.1f requests/s, the source served %.1f before the switch"):format(p.target_cluster,
      target_table, qps[2], baseline)
  elseif baseline == 0 then
    ferry.log.warn("the source had no traffic before the switch: the target's QPS proves nothing")
  end
  for i, side in ipairs(sides) do
    for _, key in ipairs(watched) do
      local m = pegasus.METRICS[key]
      -- 2.6 counters are cumulative (compare two samples); 2.5 "recent" counters are per period.
      local v = (m.cumulative_new and pegasus.has_new_metrics(version)) and (after[i][key] - before[i][key]) or after[i][key]
      if v ~= 0 then
        problems[#problems + 1] = ("%s: %s = %d (must stay 0)"):format(side.name, pegasus.metric_name(version, m), v)
      end
    end
  end
  if #problems > 0 then
    ferry.fail("conflict", "the migration does not verify:\n  " .. table.concat(problems, "\n  "),
      {hint = ("to roll back: point MetaProxy at %s again and, on %s, `use %s` then `del_app_envs replica.deny_client_request`; " ..
        "or fix the cause and run again with --from-step verify"):format(p.source_cluster, p.source_cluster, p.source_table)})
  end
  ferry.log.info(("%s now serves %s; duplication %s from %s can be removed (remove_dup %s %s) once you no longer need a way back"):format(
    p.target_cluster, target_table, tostring(ferry.state.get("dupid")), p.source_cluster, p.source_table, tostring(ferry.state.get("dupid"))))
  return {source_qps = math.floor(qps[1] + 0.5), target_qps = math.floor(qps[2] + 0.5)}
end)
