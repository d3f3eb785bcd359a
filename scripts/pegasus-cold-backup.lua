-- Move a Pegasus table through a cold backup (rate-limited, watched, retried), then restore or bulk load it.
--
-- The vendor procedures "Cold Backup Migration" and "Dual-Write with Bulkload" as a runbook: limit
-- the upload rate, start the one-shot backup with admin-cli, watch it and raise the limit in steps
-- once the upload phase begins, detect a failed backup (its status, a meta that forgot it, or the
-- upload metric dropping to zero), delete the partial backup directory and start again up to a
-- bound; then admin-cli `restore`, or the offline split plus bulk load (usage scenario bulk_load,
-- start_bulk_load, status polled to SUCCEED, scenario restored), with --ingest_behind for the
-- dual-write variant. Where the vendor text and Pegasus' code differ ferry follows the code: the
-- upload is limited by hdfs_write_limit_rate_mb_per_sec (2.4+), not nfs.max_send_rate_megabytes;
-- the doc's `restore -c ...` is admin-cli's command. See docs/procedures/pegasus.md.

local pegasus = require "ferry.pegasus"

local p = ferry.params{
  {name = "shell", type = "string", required = true,
   doc = "the Pegasus shell command for the source cluster, run by sh (`pegasus_shell config.ini ClusterA`)"},
  {name = "source_cluster", type = "string", required = true, doc = "the source cluster's name"},
  {name = "source_table", type = "string", required = true, doc = "the table to back up (TableA)"},
  {name = "target_cluster", type = "string", doc = "the cluster to restore or bulk load into (default: source_cluster)"},
  {name = "target_table", type = "string", doc = "the table to create (restore -n) or load (default: source_table)"},
  {name = "method", type = "string", default = "restore", choices = {"restore", "bulk_load", "ingest_behind", "backup_only"},
   doc = "restore: admin-cli restore (same partition count); bulk_load: offline split + bulk load; ingest_behind: bulk load " ..
     "with --ingest_behind under the application's dual writes; backup_only: stop after the backup"},
  {name = "provider", type = "string", required = true,
   doc = "the block service of the backup, a [block_service.NAME] of the servers' config.ini (hdfs_xxx)"},
  {name = "backup_path", type = "string", doc = "admin-cli backup's SPECIFIC_BACKUP_PATH (/user/pegasus/backup)"},
  {name = "cold_backup_root", type = "string",
   doc = "the source servers' [replication] cold_backup_root (default: source_cluster, as %{cluster.name})"},
  {name = "admin_cli", type = "string", default = "admin-cli", doc = "the admin-cli command, run by sh"},
  {name = "target_shell", type = "string",
   doc = "a shell command for the target cluster (bulk load, row counts); default: `shell` with source_cluster replaced by target_cluster"},
  {name = "shell_config", type = "path", doc = "the shell's config.ini (default: read from the shell command)"},
  {name = "shell_cwd", type = "path", doc = "the folder the shell and admin-cli run in (default: the current folder)"},
  {name = "pegasus_version", type = "string",
   doc = "the Pegasus version (2.3 .. 2.6) when the shell's banner does not tell it, or to override it"},
  {name = "source_meta", type = "string", doc = "source meta servers host:port,... (default: the shell's banner)"},
  {name = "target_meta", type = "string", doc = "target meta servers (default: [pegasus.clusters] of the shell's config)"},
  {name = "rate_limit", type = "integer", default = 50, doc = "upload limit in MB/s set before the backup (the doc's 50)"},
  {name = "rate_step", type = "integer", default = 50, doc = "raise the limit by this much (MB/s) once the upload runs"},
  {name = "rate_max", type = "integer", default = 100, doc = "do not raise the limit above this (MB/s; the doc's 100)"},
  {name = "raise_every", type = "duration", default = "5m", doc = "how long the upload runs at one limit before it is raised"},
  {name = "rate_after", type = "integer",
   doc = "the limit to set after the backup (default: the value each replica server had before ferry changed it; 0 leaves the raised limit)"},
  {name = "retries", type = "integer", default = 3, doc = "start a failed backup again at most this many times"},
  {name = "remove_command", type = "string",
   doc = "deletes a failed backup's directory, {path} = <backup_path>/<cold_backup_root>/<backup_id> on the provider " ..
     "(e.g. `hdfs dfs -rm -r -skipTrash hdfs://nn{path}`); default: ask the operator to delete it"},
  {name = "poll_interval", type = "duration", default = "10s", doc = "how often to query the backup or bulk load status"},
  {name = "stall_timeout", type = "duration", default = "10m",
   doc = "a backup still `in progress` whose upload metric stayed 0 this long after uploading is reported as failed (ferry then waits for the meta to end it)"},
  {name = "backup_timeout", type = "duration", default = "48h", doc = "give up waiting for one backup after this long"},
  {name = "bulk_load_root", type = "string", doc = "bulk load: start_bulk_load -r, the offline split's output root (/user/pegasus/split)"},
  {name = "bulk_load_provider", type = "string", doc = "bulk load: start_bulk_load -p (default: provider)"},
  {name = "bulk_load_cluster", type = "string", doc = "bulk load: start_bulk_load -c, the cluster folder under the root (default: target_cluster)"},
  {name = "split_command", type = "string",
   doc = "bulk load: runs the offline split (pegasus-spark); placeholders {backup_dir} {bulk_load_dir} {app_id} {partition_count} " ..
     "{backup_id} {table}; default: ask the operator to run it"},
  {name = "load_timeout", type = "duration", default = "48h", doc = "give up waiting for restore or bulk load after this long"},
}

local target_cluster = p.target_cluster or p.source_cluster
local target_table = p.target_table or p.source_table
local bulk = p.method == "bulk_load" or p.method == "ingest_behind"
local root = p.cold_backup_root or p.source_cluster
local backup_path = p.backup_path and p.backup_path:gsub("/+$", "") or ""
if bulk and not p.bulk_load_root then
  ferry.fail("usage", "method=" .. p.method .. " needs -p bulk_load_root=... (start_bulk_load -r, where the offline split writes)")
end
if p.method == "restore" and target_cluster == p.source_cluster and target_table == p.source_table then
  ferry.fail("usage", "restore creates a new table: give target_cluster or target_table (restore refuses an existing name)")
end
if p.rate_limit <= 0 or p.rate_max < p.rate_limit then
  ferry.fail("usage", "rate_limit must be positive and rate_max at least rate_limit")
end

local cwd = p.shell_cwd
local banner, version = pegasus.probe(p.shell, p.source_cluster, {cwd = cwd, forced = p.pegasus_version})
if p.method == "ingest_behind" and not pegasus.at_least(version, "2.4") then
  ferry.fail("usage", ("start_bulk_load --ingest_behind needs Pegasus 2.4 or later; the shell is %s"):format(version.text))
end

local site = pegasus.locate({shell = p.shell, shell_config = p.shell_config, source_cluster = p.source_cluster,
  target_cluster = target_cluster, source_meta = p.source_meta, target_meta = p.target_meta, target_shell = p.target_shell}, banner, cwd)
local config_path = site.config_path
local source_meta, target_meta, target_shell = site.source_meta, site.target_meta, site.target_shell
if p.method ~= "backup_only" and not target_meta then
  ferry.fail("usage", ("cannot tell %s's meta servers: give -p target_meta=host:port,... or add %s to [pegasus.clusters] of %s"):format(
    target_cluster, target_cluster, tostring(config_path)))
end
if bulk and not target_shell then
  ferry.fail("usage", "bulk load runs in a shell on " .. target_cluster .. ": give -p target_shell=...")
end

local function admin(metas, args, opts)
  opts = opts or {}
  opts.cwd = cwd
  return pegasus.admin(p.admin_cli, metas, args, opts)
end

local function source_app()
  local app = pegasus.app_info(source_meta, p.source_table)
  if not app then
    ferry.fail("not_found", ("the table %s does not exist on %s (%s)"):format(p.source_table, p.source_cluster, source_meta))
  end
  return app
end

-- The upload limit, set the way that really governs HDFS traffic for this version [reference §3.6].
local limit = pegasus.upload_limit(version)
local function set_rate(mb)
  if limit.how == "http" then
    for _, node in ipairs(pegasus.nodes(source_meta)) do pegasus.update_config(node, limit.key, mb) end
  else
    local r = pegasus.shell(p.shell, {("remote_command -t replica-server %s %d"):format(limit.key, mb)}, {cwd = cwd})
    if r.dry_run then return end
    local rc = pegasus.parse_remote_command(r.text)
    local bad = {}
    for addr, n in pairs(rc.nodes) do if not n.ok then bad[#bad + 1] = addr .. ": " .. n.message end end
    if next(rc.nodes) == nil or #bad > 0 then
      ferry.fail("exec", ("remote_command %s %d failed on %s"):format(limit.key, mb,
        #bad > 0 and table.concat(bad, ", ") or ("every node:\n" .. pegasus.tail(r.text, 5))))
    end
  end
  ferry.state.set("rate", mb)
  ferry.log.info(("upload limit %s = %d MB/s on %s's replica servers"):format(limit.key, mb, p.source_cluster))
end

-- Puts back each server's limit from before the backup (`before`: node -> MB/s).
local function restore_rates(before, rate)
  for node, v in pairs(before) do
    if limit.how == "http" then
      pegasus.update_config(node, limit.key, v)
      ferry.log.info(("upload limit %s = %s MB/s on %s again, as before the backup"):format(limit.key, tostring(v), node))
    elseif v <= 0 then
      -- nfs_server_impl.cpp refuses a value <= 0 ("ERR: invalid arguments"): unlimited cannot be put back.
      ferry.log.warn(("%s on %s was %s (unlimited) before the backup; remote_command cannot set that back, so it stays at %d MB/s " ..
        "until the server restarts"):format(limit.key, node, tostring(v), rate))
    else
      local r = pegasus.shell(p.shell, {("remote_command -l %s %s %d"):format(node, limit.key, v)}, {cwd = cwd})
      local n = not r.dry_run and pegasus.parse_remote_command(r.text).nodes[node]
      if not r.dry_run and not (n and n.ok) then
        ferry.fail("exec", ("putting %s = %d back on %s failed: %s"):format(limit.key, v, node, n and n.message or pegasus.tail(r.text, 3)))
      end
    end
  end
  ferry.state.set("rate", nil)
end

local function partial_dir(id) return ("%s/%s/%s"):format(backup_path, root, id) end

local function start_backup(app_id)
  local args = {"backup", tostring(app_id), p.provider}
  if backup_path ~= "" then args[#args + 1] = backup_path end
  local r = admin(source_meta, args)
  if r.dry_run then return "DRY-RUN" end
  local id = pegasus.parse_backup_id(r.text)
  if not id then
    local why = r.failures[1] or pegasus.tail(r.text, 3)
    local hint
    if why:find("actively being backed up") then
      hint = "a backup of this table is running and cannot be cancelled: wait until it ends (admin-cli query-backup-status " ..
        app_id .. "), then run the same command again"
    elseif why:find("ERR_SERVICE_NOT_ACTIVE") then
      hint = "cold backup is disabled: set [meta_server] cold_backup_disabled = false on the metas"
    elseif why:find("default backup path has already configured") then
      hint = "the provider's args set a root path: run again without backup_path"
    end
    ferry.fail("exec", "admin-cli backup failed: " .. why, {hint = hint})
  end
  ferry.log.info(("backup %s of %s (app %d) started to %s %s"):format(id, p.source_table, app_id, p.provider, partial_dir(id)))
  return id
end

-- The limit each replica server has now, before ferry changes it: 2.4+ GET /config?name=<flag>
-- (http/config_http_service.cpp get_config: the flag as JSON whose "value" is a string, or the
-- error text), older `remote_command <key>` without a value, which answers the number
-- (nfs_server_impl.cpp: `if (args.empty()) return std::to_string(FLAGS_...)`).
local function current_rates()
  local out = {}
  if limit.how == "http" then
    for _, node in ipairs(pegasus.nodes(source_meta)) do
      local r = ferry.http.get("http://" .. node .. "/config", {query = {name = limit.key}, timeout = 10, retries = 2})
      local ok, v = pcall(function() return r:json() end)
      local value = ok and type(v) == "table" and tonumber(v.value)
      if r.status ~= 200 or not value then
        ferry.fail("unavailable", ("reading %s on %s failed: HTTP %d %s"):format(limit.key, node, r.status, r.body),
          {hint = "give -p rate_after=N to say what to set after the backup"})
      end
      out[node] = math.tointeger(value) or value
    end
    return out
  end
  local r = pegasus.shell(p.shell, {"remote_command -t replica-server " .. limit.key}, {cwd = cwd, read_only = true})
  if r.dry_run then return out end
  for addr, n in pairs(pegasus.parse_remote_command(r.text).nodes) do
    local value = n.ok and tonumber(n.message)
    if not value then
      ferry.fail("exec", ("reading %s on %s failed: %s"):format(limit.key, addr, n.message))
    end
    out[addr] = math.tointeger(value) or value
  end
  return out
end

ferry.step("rate-limit", "Rate-limit network I/O before the backup", function()
  -- Kept from the first run: a resumed run must not take ferry's own limit for the site's.
  if ferry.state.get("rate_before") == nil and p.rate_after == nil then
    local before = current_rates()
    ferry.state.set("rate_before", before)
    for node, v in pairs(before) do ferry.log.info(("%s on %s is %s MB/s before the backup"):format(limit.key, node, tostring(v))) end
  end
  if limit.how == "http" then
    ferry.log.info(("Pegasus %s: the backup upload is limited by hdfs_write_limit_rate_mb_per_sec (set with /updateConfig on " ..
      "each replica server), not the doc's %s, which limits replica-to-replica copies"):format(version.text, limit.doc_key))
  else
    ferry.log.warn(("Pegasus %s has no HDFS upload limit (hdfs_write_limit_rate_mb_per_sec came in 2.4); setting the doc's %s, " ..
      "which limits replica-to-replica copies only"):format(version.text, limit.key))
  end
  set_rate(p.rate_limit)
  return {rate = p.rate_limit, setting = limit.key}
end)

ferry.step("start-backup", "Initiate the backup via admin-cli", function()
  local app = source_app()
  local id = start_backup(app.app_id)
  ferry.state.set("backup", {id = id, app_id = app.app_id, attempt = 1, partitions = app.partition_count})
  return {backup_id = id, app_id = app.app_id}
end)

ferry.step("monitor-backup", "Monitor progress, raise the rate limit, handle failures", function()
  if ferry.dry_run() then
    ferry.log.info("dry run: would poll query-backup-status and the upload metric until the backup completes")
    return
  end
  local b = ferry.state.get("backup")
  local nodes = pegasus.nodes(source_meta)
  local rate = ferry.state.get("rate") or p.rate_limit
  -- 2.6 reports it per replica, so only this table's count; 2.5's is per server (any table's backup).
  local metric = pegasus.METRICS.upload_max_bytes
  local uploading_since, zero_since, raised_at, stalled
  local polls = 0

  local function handle_failure(why)
    ferry.log.error(("backup %s failed (attempt %d): %s"):format(b.id, b.attempt, why))
    b.failed = true
    ferry.state.set("backup", b)
    -- The doc: wait until the upload metric is back to 0 (the failed backup has ended), delete
    -- the backup directory, start again.
    ferry.task.poll{every = p.poll_interval, timeout = p.backup_timeout, describe = "the failed backup to end (upload metric 0)",
      check = function()
        local m = pegasus.cluster_metric(nodes, version, metric, {table_id = b.app_id})
        if m.max == 0 then return true end
        return false, ("%s = %d"):format(pegasus.metric_name(version, metric), m.max)
      end}
    local dir = partial_dir(b.id)
    if p.remove_command then
      local cmd = pegasus.fill(p.remove_command, {path = dir, backup_id = b.id}, "remove_command")
      ferry.log.info("deleting the failed backup's directory: " .. cmd)
      ferry.exec.run{"sh", "-c", cmd, cwd = cwd}
    else
      ferry.confirm(("Backup %s failed. Delete its directory %s on %s now (Pegasus does not), then answer yes to start again"):format(
        b.id, dir, p.provider))
    end
    if b.attempt > p.retries then
      ferry.fail("unavailable", ("the backup of %s failed %d time(s); last: %s"):format(p.source_table, b.attempt, why),
        {hint = "find the cause (a replica server restarting?), then run the same command again with --from-step start-backup"})
    end
    local id = start_backup(b.app_id)
    b = {id = id, app_id = b.app_id, attempt = b.attempt + 1, partitions = b.partitions}
    ferry.state.set("backup", b)
    uploading_since, zero_since, stalled = nil, nil, nil
  end

  if b.failed then handle_failure("recorded by the interrupted run") end
  local started = os.time()
  while true do
    polls = polls + 1
    local r = admin(source_meta, {"query-backup-status", tostring(b.app_id), b.id}, {read_only = true})
    local status = pegasus.backup_status(r.text, b.id)
    local up = pegasus.cluster_metric(nodes, version, metric, {table_id = b.app_id}).max
    ferry.log.info(("backup %s: %s, %s = %d"):format(b.id, status or "unknown", pegasus.metric_name(version, metric), up))
    local now = os.time()
    if status == "completed" then break end
    if status == "failed" then
      handle_failure("query-backup-status says failed")
    elseif status == nil and #r.failures == 0 then
      -- Backup states live in the primary meta's memory: after a failover it is forgotten [§3.2].
      handle_failure("the meta does not know the backup any more (meta failover?)")
    elseif status == nil then
      ferry.log.warn("query-backup-status failed: " .. r.failures[1])
    else
      if up > 0 then
        if not uploading_since then
          ferry.log.info(("the upload phase began; raising the limit by %d MB/s every %d s up to %d MB/s"):format(
            p.rate_step, p.raise_every, p.rate_max))
        end
        uploading_since = uploading_since or now
        raised_at = raised_at or now
        zero_since = nil
        -- The upload phase has begun (the doc: once disk IO drops): raise the limit in steps.
        if rate < p.rate_max and now - raised_at >= p.raise_every then
          rate = math.min(p.rate_max, rate + p.rate_step)
          set_rate(rate)
          raised_at = now
        end
      elseif uploading_since then
        zero_since = zero_since or now
        if now - zero_since >= p.stall_timeout and not stalled then
          -- A replica restart fails the backup, but the meta marks it failed only on some errors and
          -- retries others forever [reference §3.2]; it cannot be cancelled, and a new backup of the
          -- table is refused while it runs. So ferry waits for the meta to end it (or forget it).
          stalled = true
          ferry.log.error(("backup %s looks failed: the upload metric dropped to 0 and stayed there for %d s while it is " ..
            "in progress; waiting for the meta to end it (it cannot be cancelled; a failover of the primary meta drops it)"):format(
            b.id, now - zero_since))
        end
      end
    end
    if os.time() - started > p.backup_timeout then
      ferry.fail("timeout", ("backup %s did not complete within %d s"):format(b.id, p.backup_timeout),
        {hint = "run the same command again to keep watching it"})
    end
    ferry.task.sleep(p.poll_interval)
  end
  ferry.log.info(("backup %s completed after %d attempt(s), at %s"):format(b.id, b.attempt, partial_dir(b.id)))
  if p.rate_after and p.rate_after > 0 then
    set_rate(p.rate_after)
  elseif p.rate_after == nil then
    restore_rates(ferry.state.get("rate_before") or {}, rate)
  end
  return {backup_id = b.id, attempts = b.attempt, final_rate = rate, polls = polls}
end)

if p.method == "backup_only" then return end

local function backup() return ferry.state.get("backup") or {} end

local function count_rows(shell_cmd, tbl)
  if not shell_cmd then return nil end
  local r = pegasus.shell(shell_cmd, {"use " .. pegasus.arg(tbl), pegasus.count_command(version)}, {read_only = true, cwd = cwd})
  return pegasus.parse_count(r.text)
end

if p.method == "restore" then
  ferry.step("restore", "Restore the backup with admin-cli restore", function()
    local b = backup()
    local existing = pegasus.app_info(target_meta, target_table)
    if existing then
      local envs = pegasus.app_envs(target_meta, target_table)
      if envs["restore.backup_id"] == tostring(b.id) then
        ferry.log.info(("%s already exists on %s, restored from backup %s by an earlier run"):format(target_table, target_cluster, b.id))
        return {app_id = existing.app_id, partitions = existing.partition_count}
      end
      ferry.fail("conflict", ("%s already exists on %s; restore creates the table and refuses an existing name"):format(
        target_table, target_cluster), {hint = "give another -p target_table, or drop the table"})
    end
    -- -c is the source's cold_backup_root, which defaults to its cluster name [reference §3.5].
    local args = {"restore", "-c", root, "-a", p.source_table, "-i", tostring(b.app_id), "-t", tostring(b.id), "-b", p.provider}
    if backup_path ~= "" then args[#args + 1] = "-r"; args[#args + 1] = backup_path end
    if target_table ~= p.source_table then args[#args + 1] = "-n"; args[#args + 1] = target_table end
    local r = admin(target_meta, args, {timeout = p.load_timeout})
    if r.dry_run then return end
    local new_id = r.text:match("new AppID: (%d+)")
    if not new_id then
      local why = r.failures[1] or pegasus.tail(r.text, 3)
      ferry.fail("exec", "admin-cli restore failed: " .. why, {hint = why:find("app metadata") and
        ("no backup metadata at %s/%s/%s/%s_%d: check cold_backup_root and backup_path"):format(backup_path, root, b.id,
          p.source_table, b.app_id) or "run the same command again once the cause is fixed"})
    end
    local app = pegasus.app_info(target_meta, target_table)
    if not app then
      ferry.fail("not_found", ("restore answered new AppID %s but %s has no table %s"):format(new_id, target_cluster, target_table))
    end
    if app.partition_count ~= b.partitions then
      ferry.fail("conflict", ("the restored %s has %d partitions, the source %d"):format(target_table, app.partition_count, b.partitions))
    end
    ferry.log.info(("restored %s as %s on %s (app id %s, %d partitions)"):format(p.source_table, target_table, target_cluster,
      new_id, app.partition_count))
    return {app_id = tonumber(new_id), partitions = app.partition_count}
  end)
else
  local provider = p.bulk_load_provider or p.provider
  local bl_cluster = p.bulk_load_cluster or target_cluster
  local bl_root = p.bulk_load_root:gsub("/+$", "")
  local function target_app()
    local app = pegasus.app_info(target_meta, target_table)
    if not app then
      ferry.fail("not_found", ("the table %s does not exist on %s; bulk load needs it"):format(target_table, target_cluster),
        {hint = ("create it first: create %s -p <partitions>%s"):format(target_table,
          p.method == "ingest_behind" and " -e rocksdb.allow_ingest_behind=true" or "")})
    end
    return app
  end

  ferry.step("offline-split", "Convert the cold backup to bulk load files (offline split)", function()
    local b = backup()
    local app = target_app()
    if p.method == "ingest_behind" then
      local envs = pegasus.app_envs(target_meta, target_table)
      if envs["rocksdb.allow_ingest_behind"] ~= "true" then
        ferry.fail("invalid_input", ("%s was not created with rocksdb.allow_ingest_behind=true; start_bulk_load --ingest_behind " ..
          "would fail with ERR_INCONSISTENT_STATE"):format(target_table),
          {hint = ("it can only be set at creation: create %s -p %d -e rocksdb.allow_ingest_behind=true"):format(target_table,
            app.partition_count)})
      end
    end
    -- bulk_load_info's app_id and partition_count must be the TARGET table's [reference §4.2].
    local values = {backup_dir = ("%s/%s_%d"):format(partial_dir(b.id), p.source_table, b.app_id),
                    bulk_load_dir = ("%s/%s/%s"):format(bl_root, bl_cluster, target_table),
                    app_id = tostring(app.app_id), partition_count = tostring(app.partition_count),
                    backup_id = tostring(b.id), table = target_table}
    if p.split_command then
      local cmd = pegasus.fill(p.split_command, values, "split_command")
      ferry.log.info("offline split: " .. cmd)
      ferry.exec.run{"sh", "-c", cmd, cwd = cwd, timeout = p.load_timeout}
    else
      ferry.confirm(("Run the offline split (pegasus-spark) of %s into %s on %s, with app_id %d and partition_count %d in " ..
        "bulk_load_info. Done?"):format(values.backup_dir, values.bulk_load_dir, provider, app.app_id, app.partition_count))
    end
    return {app_id = app.app_id, partitions = app.partition_count}
  end)

  local function set_scenario(value)
    local r = pegasus.shell(target_shell, {"use " .. pegasus.arg(target_table), "set_app_envs rocksdb.usage_scenario " .. value},
      {cwd = cwd})
    if r.dry_run then return end
    -- `use` never checks the table and the exit code is always 0: read the env back [§7.2, §8.2].
    local envs = pegasus.app_envs(target_meta, target_table)
    if envs["rocksdb.usage_scenario"] ~= value then
      ferry.fail("exec", ("set_app_envs rocksdb.usage_scenario %s on %s did not take: %s"):format(value, target_table,
        r.failures[1] or pegasus.tail(r.text, 3)))
    end
  end

  ferry.step("set-usage-scenario", "set_app_envs rocksdb.usage_scenario bulk_load", function()
    local envs = pegasus.app_envs(target_meta, target_table)
    local before = envs["rocksdb.usage_scenario"] or "normal"
    if ferry.state.get("scenario_before") == nil then ferry.state.set("scenario_before", before) end
    set_scenario("bulk_load")
    return {before = before}
  end)

  local function load_status()
    local r = pegasus.shell(target_shell, {"query_bulk_load_status -a " .. pegasus.arg(target_table)}, {read_only = true, cwd = cwd})
    return pegasus.parse_bulk_load(r.text), r
  end

  ferry.step("start-bulk-load", "start_bulk_load" .. (p.method == "ingest_behind" and " --ingest_behind" or ""), function()
    local cmd = ("start_bulk_load -a %s -c %s -p %s -r %s"):format(pegasus.arg(target_table), pegasus.arg(bl_cluster),
      pegasus.arg(provider), pegasus.arg(bl_root))
    if p.method == "ingest_behind" then cmd = cmd .. " --ingest_behind" end
    local r = pegasus.shell(target_shell, {"use " .. pegasus.arg(target_table), cmd}, {cwd = cwd})
    if r.dry_run then return end
    if not r.text:find("start bulk load succeed") then
      local why = r.failures[1] or pegasus.tail(r.text, 3)
      local st = load_status()
      if why:find("already executing bulk load") and st and st.loading then
        ferry.log.info(target_table .. " is already bulk loading (started by the interrupted run)")
        return {status = st.status}
      end
      local hint
      if why:find("ERR_INCONSISTENT_STATE") then
        hint = "bulk_load_info's app_id and partition_count must be the target table's, and --ingest_behind needs a table created " ..
          "with rocksdb.allow_ingest_behind=true; redo the offline split (--from-step offline-split)"
      elseif why:find("ERR_OBJECT_NOT_FOUND") then
        hint = ("no bulk_load_info under %s/%s/%s on %s: did the offline split write there?"):format(bl_root, bl_cluster, target_table, provider)
      elseif why:find("ERR_BUSY") then
        hint = "another table is bulk loading (one at a time unless enable_concurrent_bulk_load=true): wait for it, then run again"
      end
      ferry.fail("exec", "start_bulk_load failed: " .. why, {hint = hint})
    end
    return {cluster = bl_cluster, root = bl_root}
  end)

  ferry.step("wait-bulk-load", "Poll query_bulk_load_status until SUCCEED", function()
    if ferry.dry_run() then return end
    local progress = ferry.log.progress{title = "bulk load " .. target_table, total = 100}
    local last = ferry.task.poll{every = p.poll_interval, timeout = p.load_timeout, describe = "bulk load of " .. target_table,
      check = function()
        local st, r = load_status()
        if not st then return false, r.failures[1] or "no status" end
        if st.status == "SUCCEED" or st.status == "FAILED" or st.status == "CANCELED" then return st end
        if st.download then progress:set(st.download // 2) end
        if st.ingestion then progress:set(50 + st.ingestion // 2) end
        progress:message(st.status)
        return false, st.status
      end}
    progress:finish()
    if last.status ~= "SUCCEED" then
      -- Outside the poll: its check treats retryable errors as transient.
      ferry.fail("conflict", ("bulk load of %s %s: %s"):format(target_table, last.status, tostring(last.err)),
        {hint = ("some partitions may be ingested and others not; clear_bulk_load -a %s, fix the cause, then run again with " ..
          "--from-step start-bulk-load"):format(target_table)})
    end
    return {status = last.status}
  end)

  ferry.step("restore-usage-scenario", "Put rocksdb.usage_scenario back", function()
    local before = ferry.state.get("scenario_before") or "normal"
    if before == "bulk_load" then before = "normal" end
    set_scenario(before)
    ferry.log.info(("rocksdb.usage_scenario of %s is %s again; compaction was off during the load: start a manual compaction"):format(
      target_table, before))
    return {scenario = before}
  end)
end

ferry.step("verify", "Count the rows of both tables", function()
  local src = count_rows(p.shell, p.source_table)
  local dst = count_rows(target_shell, target_table)
  if src and dst then
    ferry.log.info(("%s.%s: %d rows; %s.%s: %d rows"):format(p.source_cluster, p.source_table, src, target_cluster, target_table, dst))
    if dst < src and p.method ~= "ingest_behind" then
      ferry.log.warn(("the target has %d row(s) fewer than the source: were there writes after the backup?"):format(src - dst))
    end
  end
  return {source_rows = src, target_rows = dst}
end)
