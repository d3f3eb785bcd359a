-- Move a Pegasus table to another cluster online: duplication, writes blocked until drained, MetaProxy switch, source blocked, verified.
--
-- The vendor procedure "Online (Hot) Migration" as a runbook, cut over the way upstream's own
-- table-migrator does it (apache/incubator-pegasus admin-cli/executor/toolkits/tablemigrator/
-- migrator.go MigrateTable, switcher.go SwitchMetaAddrs): confirm every client goes through
-- MetaProxy, check that the source table's replicas all have data_version 1 (migrator.go step 1,
-- GET /replica/data_version on every replica server), set up duplication from the source table to the target (with its checkpoint), wait
-- until it has nearly caught up, block WRITES on the source (timeout*write, migrator.go step 4),
-- wait until the duplication has drained -- every partition's confirmed decree equal to its last
-- committed decree, read from query_dup -d's partition_states (2.6) or the replica servers'
-- /replica/duplication (2.4, 2.5) -- point MetaProxy's ZooKeeper node at the target, then block
-- all requests on the source (reconfig*all, switcher.go) so clients refresh their route; verify
-- as the doc says (source QPS zero, target QPS matches, non-idempotent write rejections and
-- read/write failures stay at zero), and remove the duplication. MetaProxy forwards a client's
-- query for table T as T (pegasus-kv/meta-proxy meta/init.go queryConfig), so the target table
-- must have the source's name. See docs/procedures/pegasus.md.

local pegasus = require "ferry.pegasus"
local dup = require "ferry.pegasus_dup"

local p = ferry.params{
  {name = "shell", type = "string", required = true,
   doc = "the Pegasus shell command for the source cluster, run by sh (`pegasus_shell config.ini ClusterA`)"},
  {name = "source_cluster", type = "string", required = true, doc = "the source cluster's name"},
  {name = "source_table", type = "string", required = true, doc = "the table to migrate"},
  {name = "target_cluster", type = "string", required = true,
   doc = "the target cluster, as named in the source servers' [pegasus.clusters] and duplication-group"},
  {name = "target_table", type = "string",
   doc = "the table on the target; it must be source_table (MetaProxy forwards the client's table name unchanged)"},
  {name = "checkpoint", type = "boolean", default = true,
   doc = "duplicate the checkpoint too (add_dup -s: the target table must not exist, it is created); false: incremental only, the target table must exist"},
  {name = "zk_command", type = "string",
   doc = "updates MetaProxy's ZooKeeper node of the table; placeholders {table} {cluster} {metas} {value} (the node's JSON), " ..
     "e.g. `zkCli.sh -server zk:2181 set /metaproxy/{table} {value}`; default: ask the operator to do it"},
  {name = "target_shell", type = "string",
   doc = "a shell command for the target cluster (2.5 and older read its counters; default: `shell` with source_cluster replaced by target_cluster)"},
  {name = "shell_config", type = "path", doc = "the shell's config.ini (default: read from the shell command)"},
  {name = "shell_cwd", type = "path", doc = "the folder the shell runs in (default: the current folder)"},
  {name = "pegasus_version", type = "string",
   doc = "the Pegasus version (2.3 .. 2.6) when the shell's banner does not tell it, or to override it"},
  {name = "source_meta", type = "string", doc = "source meta servers (default: the shell's banner)"},
  {name = "target_meta", type = "string", doc = "target meta servers (default: [pegasus.clusters] of the shell's config)"},
  {name = "max_lag", type = "integer", default = 1000,
   doc = "block writes once every partition is at most this many mutations behind (last committed - confirmed decree); " ..
     "the cut-over itself waits for 0"},
  {name = "block_writes", type = "string", default = "timeout*write", choices = {"timeout*write", "reconfig*write"},
   doc = "replica.deny_client_request set on the source while the duplication drains (table-migrator: timeout*write)"},
  {name = "deny", type = "string", default = "reconfig*all", choices = {"reconfig*all", "timeout*all"},
   doc = "replica.deny_client_request set on the source after the switch (reconfig answers ERR_INVALID_STATE, so clients refresh at once)"},
  {name = "drain_timeout", type = "duration", default = "30m",
   doc = "give up waiting for the duplication to drain after writes are blocked (then writes stay blocked: see the hint)"},
  {name = "counter_interval", type = "integer", default = 10,
   doc = "2.5 and older: the servers' [pegasus.server] perf_counter_update_interval_seconds (how often their counter snapshot is taken)"},
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
if target_table ~= p.source_table then
  -- MetaProxy answers a client's query_cfg for table T by asking the cluster in ZooKeeper node
  -- <root>/T for T itself (pegasus-kv/meta-proxy meta/init.go queryConfig: tableName :=
  -- queryCfgArgs.Query.AppName; meta.QueryConfig(ctx, tableName)): it cannot send clients of T to
  -- a table named otherwise.
  ferry.fail("usage", ("online migration cannot rename the table: clients reach %s through MetaProxy, which asks the " ..
    "target cluster for a table named %s, not %s"):format(p.source_table, p.source_table, target_table),
    {hint = ("migrate into %s.%s (leave target_table out), or rename with pegasus-copy-data / pegasus-cold-backup " ..
      "and change the clients' table name yourself"):format(p.target_cluster, p.source_table)})
end
local cwd = p.shell_cwd
local banner, version = pegasus.probe(p.shell, p.source_cluster, {cwd = cwd, forced = p.pegasus_version})
if not pegasus.at_least(version, "2.4") then
  ferry.fail("usage", ("online migration needs duplication from Pegasus 2.4 on; the shell is %s"):format(version.text),
    {hint = "use pegasus-cold-backup with -p method=ingest_behind (dual writes) instead"})
end
local dup_command = pegasus.add_dup_command(version, p.source_table, p.target_cluster, {checkpoint = p.checkpoint})
if p.source_cluster == p.target_cluster then ferry.fail("usage", "source and target cluster are the same") end

local site = pegasus.locate({shell = p.shell, shell_config = p.shell_config, source_cluster = p.source_cluster,
  target_cluster = p.target_cluster, source_meta = p.source_meta, target_meta = p.target_meta, target_shell = p.target_shell}, banner, cwd)
local config_path, source_meta, target_meta = site.config_path, site.source_meta, site.target_meta
if not target_meta then
  ferry.fail("usage", ("cannot tell %s's meta servers: give -p target_meta=host:port,... or add it to [pegasus.clusters] of %s"):format(
    p.target_cluster, tostring(config_path)))
end

if #pegasus.addresses(target_meta) < 2 then
  -- meta-proxy meta/client.go parseToMetaList: fewer than two addresses is ERR_INVALID_DATA.
  ferry.log.warn(("MetaProxy refuses a meta_addrs with fewer than two addresses (%s): its clients would get ERR_INVALID_DATA"):format(target_meta))
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

-- Duplication ships only data_version 1 tables (the key schema of Pegasus 1.11 on): table-migrator
-- refuses any other before it adds the duplication (migrator.go MigrateTable step 1,
-- QueryReplicaDataVersion, `version.DataVersion != "1"`); ferry.pegasus_dup.data_versions.
local DUP_DATA_VERSION = "1"
local function check_data_version(src)
  local dv = dup.data_versions(pegasus.nodes(source_meta), src.app_id)
  if dv.replicas == 0 then
    ferry.fail("unavailable", ("no replica server of %s holds a replica of %s (app id %d): /replica/data_version answered " ..
      "\"app_id=%d not found\" everywhere"):format(p.source_cluster, p.source_table, src.app_id, src.app_id))
  end
  if dv.count == 1 and dv.versions[DUP_DATA_VERSION] then
    ferry.log.info(("%s has data_version %s on all %d replicas"):format(p.source_table, DUP_DATA_VERSION, dv.replicas))
    return
  end
  local parts = {}
  for v, where in pairs(dv.versions) do
    table.sort(where)
    parts[#parts + 1] = ("data_version %s on %d replica(s) (%s%s)"):format(v, #where, table.concat(where, ", ", 1, math.min(3, #where)),
      #where > 3 and ", ..." or "")
  end
  table.sort(parts)
  ferry.fail("conflict", ("%s.%s cannot be migrated by duplication: duplication supports data_version %s only " ..
    "(as admin-cli's table-migrator checks), and its replicas have %s"):format(p.source_cluster, p.source_table,
    DUP_DATA_VERSION, table.concat(parts, "; ")),
    {hint = ("copy it offline with pegasus-copy-data instead (the target table it writes through the client has data_version %s), " ..
      "with writes stopped or dual-written meanwhile"):format(DUP_DATA_VERSION)})
end

ferry.step("start-duplication", "Start hot backup: duplication from the source table to the target", function()
  local src = app_or_fail(source_meta, p.source_cluster, p.source_table)
  if not ferry.dry_run() then check_data_version(src) end
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

-- The duplication's progress: {status, lag, drained, how} from query_dup -d, or {gone = true}.
local src_nodes
local function progress(dupid, src)
  local q, r = query_dup()
  if not q then return nil, r.failures[1] or ("no query_dup -d answer: " .. pegasus.tail(r.text, 3)) end
  local e = q.dups[tostring(dupid)]
  if not e then return {gone = true} end
  if e.status ~= "DS_LOG" then return {status = e.status} end
  src_nodes = src_nodes or pegasus.nodes(source_meta)
  local d = dup.drain(e, src_nodes, src, dupid)
  -- 2.4/2.5: a replica server learns of a duplication (and forgets a removed one) by its
  -- duplication_sync with the meta every 10 s, so right after add_dup the nodes may not hold it
  -- yet; once they have reported it, every node answering without it means it was removed.
  local key = "dup_on_replicas." .. tostring(dupid)
  if d.partitions and d.partitions > 0 and not ferry.state.get(key) then ferry.state.set(key, true) end
  if d.absent and ferry.state.get(key) then
    return {gone = true, status = e.status, why = ("the replica servers of %s no longer hold it (%s) although query_dup -d " ..
      "still lists it as %s"):format(p.source_cluster, d.says, e.status)}
  end
  return {status = e.status, lag = d.lag, drained = d.drained, partitions = d.partitions,
          how = e.partition_states and "query_dup -d partition_states" or "/replica/duplication"}
end

local unblock_hint = ("to give the source its writes back: on %s, `use %s` then `del_app_envs replica.deny_client_request`"):format(
  p.source_cluster, p.source_table)

-- s: progress()'s {gone = true, why}; writes_blocked: the source refuses writes already.
local function gone(dupid, s, writes_blocked)
  local what = ("duplication %s of %s is gone: %s"):format(dupid, p.source_table,
    s.why or "query_dup -d no longer lists it (removed?)")
  if not writes_blocked then
    ferry.fail("not_found", what, {hint = ("see who removed it (the source meta server's log); then run again with " ..
      "--from-step start-duplication (with the checkpoint the target table %s must be dropped first)"):format(target_table)})
  end
  ferry.fail("not_found", ("%s; the target may lack the mutations it had not confirmed, and %s.%s still refuses writes"):format(
    what, p.source_cluster, p.source_table),
    {hint = ("do not switch MetaProxy. See who removed it (the source meta server's log). To start over: drop %s on %s, %s, " ..
      "and run again with --from-step start-duplication"):format(target_table, p.target_cluster, unblock_hint:gsub("^to give", "give"))})
end

ferry.step("wait-duplication", "Wait until the duplication has nearly caught up", function()
  if ferry.dry_run() then return end
  local dupid = ferry.state.get("dupid")
  local src = app_or_fail(source_meta, p.source_cluster, p.source_table)
  local last = ferry.task.poll{every = p.poll_interval, timeout = p.catch_up_timeout, describe = "duplication " .. dupid .. " to catch up",
    check = function()
      local s, why = progress(dupid, src)
      if not s then return false, why end
      if s.gone then return s end
      if not s.lag then return false, s.status end
      ferry.log.info(("duplication %s: %s, %d mutations behind (%d/%d partitions reported, %s)"):format(dupid, s.status, s.lag,
        s.partitions, src.partition_count, s.how))
      if s.lag <= p.max_lag and s.partitions >= src.partition_count then return s end
      return false, ("%d mutations behind"):format(s.lag)
    end}
  if last.gone then gone(dupid, last, false) end
  -- The source's QPS now is what the target must reach after the switch.
  local qps = pegasus.table_qps(src_nodes or pegasus.nodes(source_meta), version, src, p.verify_window, p.request_ops)
  ferry.state.set("baseline_qps", qps)
  ferry.log.info(("nearly caught up (%d behind); %s serves %.1f requests/s"):format(last.lag, p.source_table, qps))
  return {lag = last.lag, source_qps = math.floor(qps + 0.5)}
end)

ferry.step("confirm-switch", "Confirm the switch to the target cluster", function()
  ferry.confirm(("Duplication has nearly caught up. Cut %s over to %s now? Writes to the source are refused (%s) until the " ..
    "duplication has drained, then MetaProxy points at %s and the source refuses every request (%s)."):format(
    p.source_table, p.target_cluster, p.block_writes, target_meta, p.deny))
end)

local function set_deny(value)
  local r = shell({"use " .. pegasus.arg(p.source_table), "set_app_envs replica.deny_client_request " .. value})
  if r.dry_run then return false end
  -- `use` does not check the table and the shell exits 0 anyway: read the env back [§7.2, §8.2].
  local envs = pegasus.app_envs(source_meta, p.source_table)
  if envs["replica.deny_client_request"] ~= value then
    ferry.fail("exec", ("set_app_envs replica.deny_client_request %s on %s did not take: %s"):format(value, p.source_table,
      r.failures[1] or pegasus.tail(r.text, 3)))
  end
  return true
end

ferry.step("block-writes", "Block writes on the source so the duplication can drain", function()
  -- migrator.go MigrateTable step 4: UpdateAppEnvs(table, {"replica.deny_client_request": "timeout*write"}).
  if not set_deny(p.block_writes) then return end
  ferry.log.info(("%s.%s refuses writes (%s); reads are still served"):format(p.source_cluster, p.source_table, p.block_writes))
  return {deny = p.block_writes}
end)

ferry.step("wait-drained", "Wait until every partition's confirmed decree reaches its last committed decree", function()
  if ferry.dry_run() then return end
  local dupid = ferry.state.get("dupid")
  local src = app_or_fail(source_meta, p.source_cluster, p.source_table)
  -- Not a lag threshold: the cut-over needs every mutation the source committed to be confirmed
  -- by the target (table-migrator waits for dup_shipped_ops to reach 0, migrator.go
  -- checkDuplicationCompleted; the decrees say it per partition).
  local ok, last = pcall(ferry.task.poll, {every = p.poll_interval, timeout = p.drain_timeout,
    describe = "duplication " .. dupid .. " to drain",
    check = function()
      local s, why = progress(dupid, src)
      if not s then return false, why end
      if s.gone then return s end
      if not s.lag then return false, s.status end
      ferry.log.info(("duplication %s: %d mutations not confirmed yet (%d/%d partitions reported, %s)"):format(dupid, s.lag,
        s.partitions, src.partition_count, s.how))
      if s.drained then return s end
      return false, ("%d mutations not confirmed, %d/%d partitions reported"):format(s.lag, s.partitions, src.partition_count)
    end})
  if not ok then
    ferry.fail("timeout", ("duplication %s did not drain within %d s; %s.%s still refuses writes"):format(dupid, p.drain_timeout,
      p.source_cluster, p.source_table), {hint = "run the same command again to keep waiting, or " .. unblock_hint})
  end
  if last.gone then gone(dupid, last, true) end
  ferry.log.info(("duplication %s drained: every partition's confirmed decree is its last committed decree"):format(dupid))
  return {drained = true, partitions = last.partitions}
end)

ferry.step("switch-zookeeper", "Switch MetaProxy in ZooKeeper to the target's meta servers", function()
  -- MetaProxy's node per table: {"cluster_name": ..., "meta_addrs": "m1,m2"} (meta-proxy
  -- meta/client.go getTableInfo; tablemigrator/switcher.go encodeToZkNodeData).
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

ferry.step("block-source", "Refresh topology: block every client request on the SOURCE table", function()
  -- switcher.go SwitchMetaAddrs: after writing ZooKeeper, "replica.deny_client_request": "reconfig*all" on the source.
  if not set_deny(p.deny) then return end
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
  sides[1].shell, sides[2].shell = p.shell, site.target_shell
  local watched = {"non_idempotent", "read_fail", "write_fail"}
  local function counters(side)
    local out = {}
    for _, key in ipairs(watched) do
      out[key] = pegasus.cluster_metric(side.nodes, version, pegasus.METRICS[key],
        {sum = true, table_id = key == "non_idempotent" and side.app.app_id or nil}).sum
    end
    return out
  end
  -- 2.5 and older: these counters reset whenever anyone reads them, the servers' own reporter
  -- every perf_counter_update_interval_seconds included, so a /perfCounter read after the window
  -- sees only what accumulated since the last reader. The reporter's snapshots
  -- (remote_command perf-counters-by-substr) are summed over the window instead (ferry.pegasus_dup).
  local function snapshot_counts(side)
    if not side.shell then
      ferry.fail("usage", ("counting failures on %s needs a shell for it: give -p target_shell=..."):format(side.name))
    end
    local names = {}
    for _, key in ipairs(watched) do
      local m = pegasus.METRICS[key]
      names[key] = m.perf .. (key == "non_idempotent" and ("@" .. side.tbl) or "")
    end
    local list = {names.non_idempotent, names.read_fail, names.write_fail}
    local substrs = {}
    for i, n in ipairs(list) do substrs[i] = pegasus.arg((n:gsub("^.*%*", ""))) end
    local r = dup.sum_snapshots(function(cmds) return pegasus.shell(side.shell, cmds, {cwd = cwd, read_only = true}) end,
      substrs, list, p.verify_window, p.counter_interval, math.max(0.2, math.min(1, p.verify_window / 4)))
    local out = {}
    for key, n in pairs(names) do out[key] = r.sums[n] end
    ferry.log.info(("%s: failure counters summed over %d new perf-counter snapshot(s) of %d replica server(s)"):format(
      side.name, r.snapshots, r.nodes))
    return out
  end
  local new_metrics = pegasus.has_new_metrics(version)
  local before = new_metrics and {counters(sides[1]), counters(sides[2])} or nil
  -- The QPS windows of both sides (and before 2.6 the snapshot sums) run at once.
  local jobs = {{qps = true, side = sides[1]}, {qps = true, side = sides[2]}}
  if not new_metrics then jobs[3], jobs[4] = {side = sides[1]}, {side = sides[2]} end
  local results = ferry.task.parallel(jobs, {concurrency = #jobs}, function(job)
    if job.qps then return pegasus.table_qps(job.side.nodes, version, job.side.app, p.verify_window, p.request_ops) end
    return snapshot_counts(job.side)
  end)
  local qps = {results[1], results[2]}
  local after = new_metrics and {counters(sides[1]), counters(sides[2])} or {results[3], results[4]}
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
      -- 2.6 counters are cumulative (compare two samples); before, the sum of the window's snapshots.
      local v = (m.cumulative_new and new_metrics) and (after[i][key] - before[i][key]) or after[i][key]
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
  return {source_qps = math.floor(qps[1] + 0.5), target_qps = math.floor(qps[2] + 0.5)}
end)

ferry.step("remove-duplication", "Remove the duplication from the source table", function()
  local dupid = ferry.state.get("dupid")
  ferry.confirm(("%s serves %s now. Remove duplication %s from %s.%s (remove_dup; there is no way back through it afterwards)?"):format(
    p.target_cluster, target_table, tostring(dupid), p.source_cluster, p.source_table))
  -- src/shell/commands/duplication.cpp remove_dup -> change_dup_status(DS_REMOVED):
  -- "removing duplication(<id>) for app <t> succeed", or "... failed, error=..." on stderr.
  local r = shell({("remove_dup %s %s"):format(pegasus.arg(p.source_table), tostring(dupid))})
  if r.dry_run then return end
  if not r.text:find("removing duplication%(" .. tostring(dupid) .. "%) for app .- succeed") then
    local q = query_dup()
    if not (q and q.dups[tostring(dupid)] == nil) then
      ferry.fail("exec", ("remove_dup %s %s failed: %s"):format(p.source_table, tostring(dupid), r.failures[1] or pegasus.tail(r.text, 3)),
        {hint = "run the same command again, or remove it in the shell"})
    end
  end
  ferry.log.info(("duplication %s of %s removed"):format(tostring(dupid), p.source_table))
  return {removed = dupid}
end)
