-- Keep a StarRocks cluster in sync with another (starrocks-cluster-sync's job), over SQL and Stream Load.
--
-- The vendor's Cross-cluster Data Migration Tool as an editable runbook: it reads the tool's own
-- conf/sync.properties and conf/hosts.properties (same keys, same defaults; -p overrides any key),
-- prepares the target FE (records the settings it changes, asks, sets them, reminds you to persist
-- them in fe.conf), creates databases and tables on the target from SHOW CREATE TABLE (honouring
-- include/exclude lists and the ddl_job_allow_drop_* settings), then copies every partition whose
-- source VisibleVersion moved since ferry last copied it: SELECT ... PARTITION (p) from the source
-- into a Stream Load on the target (a staging table, then INSERT OVERWRITE of that one partition,
-- so a failure never leaves it half-loaded; labels make a retry idempotent), replication_job_batch_size
-- partitions in flight at once, of one table or several.
-- It repeats every replication_job_interval_seconds until stopped, or once with
-- one_time_run_mode=true, printing the tool's "Sync job progress" and "Sync table progress"
-- counters every report_interval_seconds. Then it compares row counts, and with -p cutover=true
-- walks the cutover checklist. See docs/procedures/starrocks-sync.md.

local sr = require "ferry.starrocks"

local decls = {
  {name = "conf_dir", type = "path", required = true,
   doc = "the tool's conf folder holding sync.properties (and optionally hosts.properties)"},
}
for _, k in ipairs(sr.KEYS) do
  local default = k[3]
  if type(default) == "table" then default = table.concat(default, ",") end
  decls[#decls + 1] = {name = k[1], type = k[2], secret = k.secret,
    doc = ("sync.properties %s (manual default: %s); -p overrides the file"):format(k[1],
      (k.secret or default == "") and "empty" or (default == nil and "none" or tostring(default)))}
end
for _, d in ipairs({
  {name = "target_http_url", type = "url",
   doc = "Stream Load base URL of the target FE (http://host:8030); default: from SHOW FRONTENDS, mapped by hosts.properties"},
  {name = "rounds", type = "integer", default = 0,
   doc = "stop after this many sync rounds (0: until stopped, as the tool; one_time_run_mode=true is one round)"},
  {name = "cutover", type = "boolean", default = false,
   doc = "after the sync: confirm writes stopped, run a last round that must reach 100%, verify, restore the FE settings"},
  {name = "load_retries", type = "integer", default = 3,
   doc = "Stream Load attempts per partition (same label) before the job counts as failed"},
  {name = "load_timeout", type = "duration", default = "10m", doc = "Stream Load timeout header per partition"},
  {name = "batch_rows", type = "integer", default = 5000,
   doc = "unused since loads stream (accepted so command lines that give it still run)"},
  {name = "load_batch_size", type = "size", default = "100MiB",
   doc = "the most bytes of one Stream Load when a partition goes as JSON (values CSV cannot carry): keep it at or under the target BE's streaming_load_max_batch_size_mb (default 100 MB); CSV loads stream and are not cut"},
  {name = "recopy", type = "list",
   doc = "db or db.table entries whose partitions are all copied again in this run (e.g. after verify found a difference)"},
}) do decls[#decls + 1] = d end

local p = ferry.params(decls)

local given = {}
for _, k in ipairs(sr.KEYS) do given[k[1]] = p[k[1]] end
local cfg, conf_path, warnings = sr.read_conf(p.conf_dir, given)
for _, w in ipairs(warnings) do ferry.log.warn(w) end
local conf_folder = conf_path:match("^(.*)/[^/]*$") or "."
local hosts, hosts_path = sr.read_hosts(conf_folder)
local one_time = cfg.one_time_run_mode or p.cutover

sr.check_sides(cfg, conf_path)

local Q, QQ = sr.quote, sr.qualified

-- Two pools per side: metadata and control statements (jdbc_socket_timeout_ms bounds them) and
-- data statements (no limit); sr.connect says why.
local src, s_host, s_port = sr.connect(cfg, hosts, conf_path, "source")
local dst, t_host, t_port = sr.connect(cfg, hosts, conf_path, "target")
local src_data, dst_data = sr.connect(cfg, hosts, conf_path, "source", true), sr.connect(cfg, hosts, conf_path, "target", true)

-- The sync state (versions copied) belongs to one pair of clusters: refuse another pair's.
local pair = {source = ("%s:%d"):format(s_host, s_port), target = ("%s:%d"):format(t_host, t_port)}
local known = ferry.state.get("clusters")
if known and (known.source ~= pair.source or known.target ~= pair.target) then
  ferry.fail("usage", ("the state dir %s belongs to the sync %s -> %s, not %s -> %s"):format(ferry.state.dir(),
    known.source, known.target, pair.source, pair.target),
    {hint = "give each pair of clusters its own --state DIR"})
end
ferry.state.set("clusters", pair)

local databases, tables_of, partitions_of = sr.databases, sr.tables_of, sr.partitions_of
local frontend_config = sr.frontend_config
local synced_key, synced = sr.synced_key, sr.synced

---------------------------------------------------------------------------------------------------
-- Counters [manual: View Migration Progress]
---------------------------------------------------------------------------------------------------

local counters = sr.new_counters()
local table_stats = {total = 0, finished = 0, expired = 0}

local last_report = 0
local function report()
  last_report = os.time()
  local text, fields = sr.job_line(counters)
  ferry.log.info(text, fields)
  local ttext, tfields = sr.table_line(table_stats)
  ferry.log.info(ttext, tfields)
end

---------------------------------------------------------------------------------------------------
-- Step 1: preparation on the target [manual: Preparations]
---------------------------------------------------------------------------------------------------

local target_http, be_count

ferry.step("preparation", "Preparation on the target cluster: ports, FE settings", function()
  ferry.log.info(("source FE %s:%d, target FE %s:%d (query ports answer)%s"):format(s_host, s_port, t_host, t_port,
    hosts_path and (", addresses mapped by " .. hosts_path) or ""))

  -- Ports: ferry needs the target FE's query and http ports and the BE http ports a Stream Load
  -- is redirected to; rpc_port and be_port serve the replication RPC ferry does not use.
  if p.target_http_url then
    target_http = p.target_http_url:gsub("/+$", "")
  else
    local fes = dst:query("SHOW FRONTENDS")
    local pick
    for _, fe in ipairs(fes) do
      if tostring(fe.Alive) == "true" and (pick == nil or fe.Role == "LEADER") then pick = fe end
    end
    if not pick then ferry.fail("unavailable", "SHOW FRONTENDS on the target lists no alive FE") end
    local host, port = sr.map_address(hosts, "TARGET", pick.IP, math.tointeger(tonumber(pick.HttpPort)))
    target_http = ("http://%s:%d"):format(host, port)
  end
  local unreachable = {}
  local function probe(what, url)
    local ok, r = pcall(ferry.http.get, url .. "/api/health", {timeout = 10, retries = 1})
    if not ok then unreachable[#unreachable + 1] = ("%s %s (%s)"):format(what, url,
      type(r) == "table" and r.message or tostring(r)) end
  end
  probe("target FE http_port", target_http)
  local bes = dst:query("SHOW BACKENDS")
  be_count = #bes
  for _, be in ipairs(bes) do
    local host, port = sr.map_address(hosts, "TARGET", be.IP, math.tointeger(tonumber(be.HttpPort)))
    probe("target BE be_http_port", ("http://%s:%d"):format(host, port))
  end
  if #unreachable > 0 then
    ferry.fail("unavailable", "ports not reachable from this machine: " .. table.concat(unreachable, "; "),
      {hint = "open them in the firewall, or map the addresses in hosts.properties (TARGET_<ip>=<host>;<port>:<port>)"})
  end

  -- FE settings: recorded once (the first run's values are what cutover restores).
  local run_mode = frontend_config(dst, "run_mode") or "shared_nothing"
  local wanted = {{"enable_legacy_compatibility_for_replication", "true"}}
  if run_mode == "shared_data" then
    wanted[#wanted + 1] = {"lake_compaction_max_tasks", "0"}
  end
  local recorded = ferry.state.get("fe_settings_before") or {}
  local changes = {}
  for _, w in ipairs(wanted) do
    local key, value = w[1], w[2]
    local now = frontend_config(dst, key)
    if now == nil then
      ferry.log.warn(("the target FE has no %s (older than v3.1.10/v3.2.6?); not set"):format(key))
    else
      if recorded[key] == nil then recorded[key] = now end
      if now ~= value then changes[#changes + 1] = {key = key, value = value, now = now} end
    end
  end
  ferry.state.set("fe_settings_before", recorded)
  for key, value in pairs(recorded) do ferry.log.info(("recorded target FE %s=%s (restored at cutover)"):format(key, value)) end
  if #changes > 0 then
    local lines = {}
    for _, c in ipairs(changes) do lines[#lines + 1] = ("%s=%s (now %s)"):format(c.key, c.value, c.now) end
    ferry.confirm("Set on the target FE: " .. table.concat(lines, ", ") .. "?")
    for _, c in ipairs(changes) do
      dst:exec(('ADMIN SET FRONTEND CONFIG ("%s" = "%s")'):format(c.key, c.value))
      ferry.log.info(("set target FE %s=%s"):format(c.key, c.value))
    end
  end
  for _, w in ipairs(wanted) do
    ferry.log.warn(("persist it: add `%s = %s` to fe.conf on every target FE, or a restart undoes it"):format(w[1], w[2]))
  end
  if run_mode == "shared_data" then
    ferry.log.info("shared-data target: ferry loads through Stream Load, so it does not need the src_<volume> " ..
      "storage volumes the replication path reads the source object storage through")
  end
  return {run_mode = run_mode, settings_changed = #changes, backends = be_count}
end, {always = true})

---------------------------------------------------------------------------------------------------
-- Step 2: DDL sync [manual: Step 3; sync.properties table, view and index settings]
---------------------------------------------------------------------------------------------------

local select_ = sr.selector(cfg.include_data_list, cfg.exclude_data_list)
local scope = {}          -- {db, name, kind, state = "ok" | "mismatch" | "failed"}
local ddl_failures = {}   -- messages of the last DDL pass's failed statements
local last_meta = nil

local function run_ddl(jobs)
  counters.ddl = counters.ddl + #jobs
  counters.ddlPending = counters.ddlPending + #jobs
  local batch = math.max(cfg.ddl_job_batch_size, 1)
  for i, job in ipairs(jobs) do
    if i > 1 and (i - 1) % batch == 0 and cfg.ddl_job_interval_seconds > 0 then
      ferry.task.sleep(cfg.ddl_job_interval_seconds)
    end
    ferry.log.info(("DDL on the target: %s"):format(job.why))
    local ok, err = pcall(dst.exec, dst, job.sql)
    counters.ddlPending = counters.ddlPending - 1
    if ok then
      if job.after then job.after() end
    else
      job.failed = type(err) == "table" and err.message or tostring(err)
      ferry.log.error(("DDL failed: %s: %s"):format(job.sql:gsub("%s+", " "):sub(1, 200), job.failed))
      ddl_failures[#ddl_failures + 1] = job.why .. ": " .. job.failed
      if job.table then job.table.state = "failed" end
    end
  end
end

--- Lists the source objects in scope and brings the target's DDL in line with them.
local function ddl_pass()
  local jobs, view_jobs = {}, {}
  local new_scope = {}
  local target_dbs = {}
  for _, name in ipairs(databases(dst)) do target_dbs[name] = true end
  for _, dbname in ipairs(databases(src)) do
    if select_.db(dbname) then
      local objects = tables_of(src, dbname) or {}
      -- Materialized views may be listed with the tables; they are synced (or not) on their own.
      local mvs = sr.materialized_views(src, dbname)
      local names = {}
      for t in pairs(objects) do
        if not mvs[t] then names[#names + 1] = t end
      end
      table.sort(names)
      local wanted_here = {}
      for _, t in ipairs(names) do
        local kind = objects[t] == "VIEW" and "view" or "table"
        if select_.table(dbname, t) and (kind == "table" or cfg.enable_view_sync) then
          wanted_here[#wanted_here + 1] = {db = dbname, name = t, kind = kind, state = "ok"}
        end
      end
      if #wanted_here > 0 and not target_dbs[dbname] then
        jobs[#jobs + 1] = {sql = "CREATE DATABASE IF NOT EXISTS " .. Q(dbname), why = "create database " .. dbname}
      end
      local existing = target_dbs[dbname] and tables_of(dst, dbname) or {}
      local target_mvs = target_dbs[dbname] and sr.materialized_views(dst, dbname) or {}
      for name in pairs(target_mvs) do existing[name] = nil end
      local seen = {}
      for _, obj in ipairs(wanted_here) do
        new_scope[#new_scope + 1] = obj
        seen[obj.name] = true
        sr.object_jobs({src = src, dst = dst, cfg = cfg}, dbname, obj, existing, jobs, view_jobs)
      end
      if cfg.enable_materialized_view_sync then
        sr.mv_jobs({src = src, dst = dst, select = select_, cfg = cfg}, dbname, mvs, target_mvs, view_jobs)
      end
      -- Objects only on the target, in a database in scope.
      for t, kind in pairs(existing) do
        if not seen[t] and select_.table(dbname, t) then
          local is_view = kind == "VIEW"
          local allowed = is_view and cfg.ddl_job_allow_drop_view_target_only or
            (not is_view and cfg.ddl_job_allow_drop_target_only)
          if allowed and (not is_view or cfg.enable_view_sync) then
            jobs[#jobs + 1] = {sql = (is_view and "DROP VIEW " or "DROP TABLE ") .. QQ(dbname, t),
              why = ("drop %s %s.%s (only on the target)"):format(is_view and "view" or "table", dbname, t)}
          end
        end
      end
    end
  end
  for _, j in ipairs(view_jobs) do jobs[#jobs + 1] = j end
  ddl_failures = {}
  run_ddl(jobs)
  scope = new_scope
  last_meta = os.time()
  return #jobs
end

ferry.step("ddl-sync", "DDL sync: databases and tables created on the target from SHOW CREATE TABLE", function()
  local n = ddl_pass()
  local tables, views, skipped = 0, 0, 0
  for _, obj in ipairs(scope) do
    if obj.kind == "view" then views = views + 1 elseif obj.state == "ok" then tables = tables + 1 else skipped = skipped + 1 end
  end
  ferry.log.info(("%d tables and %d views in scope, %d DDL statements run on the target"):format(tables, views, n))
  return {tables = tables, views = views, ddl = n, not_synced = skipped}
end, {always = true})

---------------------------------------------------------------------------------------------------
-- Step 3: data sync [manual: Step 3; replication_job_* and report_interval_seconds]
---------------------------------------------------------------------------------------------------

local copier -- set once the target's Stream Load address is known (preparation)

local function copy_partition(job)
  copier = copier or sr.copier{src = src_data, dst = dst_data, http_url = target_http, user = cfg.target_cluster_user,
    password = cfg.target_cluster_password, load_retries = p.load_retries, load_timeout = p.load_timeout,
    batch_rows = p.batch_rows, batch_bytes = p.load_batch_size, counters = function() return counters end}
  copier.copy(job)
end

-- A partition above max_replication_data_size_per_job_in_gb (or Stream Load's 10 GB) is warned about.
local big_partition = sr.big_partition_bytes(cfg)

--- One round: re-read the DDL when due, find the lagging partitions, copy them.
local function sync_round(round, force_ddl, last_round)
  counters = sr.new_counters()
  sr.check_disk(dst, be_count, cfg.target_cluster_max_disk_used_percent)
  if force_ddl or (round > 1 and (last_meta == nil or os.time() - last_meta >= cfg.meta_job_interval_seconds)) then
    ddl_pass()
  end
  local tables = {}
  for _, obj in ipairs(scope) do
    if obj.kind == "table" and obj.state == "ok" then tables[#tables + 1] = obj end
  end
  -- Metadata: SHOW PARTITIONS on both sides, meta_job_threads at a time.
  local meta = ferry.task.parallel(tables, {concurrency = math.max(cfg.meta_job_threads, 1), fail_fast = false}, function(obj)
    local ok, sp = pcall(partitions_of, src, obj.db, obj.name)
    local ok2, tp = pcall(partitions_of, dst, obj.db, obj.name)
    if not ok2 and ferry.dry_run() then ok2, tp = true, {} end -- its CREATE TABLE was only reported
    if not ok or not ok2 then
      ferry.log.error(("%s.%s: cannot read partitions: %s"):format(obj.db, obj.name,
        tostring((not ok and sp or tp).message or (not ok and sp or tp))))
      return {obj = obj, failed = true}
    end
    return {obj = obj, src = sp, dst = tp}
  end)
  local by_table, dbs = {}, {}
  for _, m in ipairs(meta) do
    local obj = m.obj
    dbs[obj.db] = true
    local jobs = {}
    if m.failed then
      counters.failed = counters.failed + 1
    else
      local s = synced(obj.db, obj.name)
      -- An unpartitioned table shows one partition named after the table.
      obj.partitioned = not (#m.src == 1 and m.src[1].name == obj.name)
      local tparts = {}
      for _, tp in ipairs(m.dst) do tparts[tp.name] = tp end
      obj.parts = {}
      local changed = false
      local live = {}
      for _, part in ipairs(m.src) do
        live[part.name] = true
        obj.parts[#obj.parts + 1] = part.name
        local last = s[part.name]
        local moved = sr.partition_moved(last, part)
        if moved == "compacted" then
          s[part.name] = sr.partition_record(part) -- a compaction, no data change
          changed = true
        elseif moved then
          local tp = tparts[part.name]
          if not last and part.version <= 1 and tp and tp.rows == 0 then
            s[part.name] = sr.partition_record(part) -- never loaded on either side
            changed = true
          elseif not tp and obj.partitioned and not obj.automatic and not ferry.dry_run() then
            counters.failed = counters.failed + 1
            ferry.log.error(("%s.%s/%s: the partition is missing on the target (see the DDL errors above)")
              :format(obj.db, obj.name, part.name))
          else
            if part.bytes and part.bytes > big_partition then
              ferry.log.warn(("%s.%s/%s holds %.1f GB: ferry copies a partition as one Stream Load (suited to " ..
                "10 GB or less), streamed from one SELECT; a failure near the end loads it all again"):format(
                obj.db, obj.name, part.name, part.bytes / 1024 ^ 3))
            end
            jobs[#jobs + 1] = {db = obj.db, t = obj.name, part = part.name, version = part.version, id = part.id,
              partitioned = obj.partitioned, name = ("%s.%s/%s"):format(obj.db, obj.name, part.name),
              record = sr.partition_record(part),
              -- An automatic table's partition the target lacks: the load creates it.
              create = obj.automatic and obj.partitioned and not tp}
          end
        end
      end
      for name in pairs(s) do
        if not live[name] then s[name] = nil; changed = true end
      end
      if changed then ferry.state.set(synced_key(obj.db, obj.name), s) end
    end
    obj.jobs_total = #jobs
    by_table[#by_table + 1] = {obj = obj, jobs = jobs}
    counters.jobs = counters.jobs + #jobs
    counters.jobPending = counters.jobPending + #jobs
  end
  table_stats.total = #tables
  if not ferry.dry_run() then sr.sweep_stages(dst, scope, dbs) end
  -- Data: every lagging partition is a job of its own, replication_job_batch_size in flight at
  -- once across all tables (partitions of one table too: each has its own staging table, label
  -- and INSERT OVERWRITE, so one failing leaves the others loaded and itself as it was). Taken
  -- round-robin over the tables, so a table with many partitions does not hold up the rest.
  local lists = {}
  for i, tj in ipairs(by_table) do lists[i] = tj.jobs end
  local queue = sr.round_robin(lists)
  local failures = {}
  ferry.task.parallel(queue, {concurrency = math.max(cfg.replication_job_batch_size, 1), fail_fast = false}, function(job)
    counters.jobPending = counters.jobPending - 1
    if ferry.dry_run() then
      ferry.log.info(("would copy %s (source version %d)"):format(job.name, job.version))
      counters.finished = counters.finished + 1
      return
    end
    counters.running = counters.running + 1
    local ok, err = pcall(copy_partition, job)
    counters.running = counters.running - 1
    if ok then
      counters.finished = counters.finished + 1
    else
      counters.failed = counters.failed + 1
      local msg = type(err) == "table" and (err.message or tostring(err)) or tostring(err)
      failures[#failures + 1] = job.name .. ": " .. msg
      ferry.log.error(("%s failed: %s"):format(job.name, msg))
    end
  end)
  -- Tables: finished once every partition was copied at least once; expired while one still lags.
  table_stats = {total = #tables, finished = 0, expired = 0}
  for _, m in ipairs(meta) do
    local s = synced(m.obj.db, m.obj.name)
    local all, lag = not m.failed, m.failed
    for _, part in ipairs(m.src or {}) do
      local last = s[part.name]
      if not last then all = false end
      if sr.partition_moved(last, part) then lag = true end
    end
    if all then table_stats.finished = table_stats.finished + 1 end
    if lag then table_stats.expired = table_stats.expired + 1 end
  end
  -- A round that did something, the last round, or report_interval_seconds since the last line.
  if last_round or counters.jobs > 0 or counters.failed > 0 or
     os.time() - last_report >= cfg.report_interval_seconds then
    report()
  end
  return failures
end

local totals = {rounds = 0, partitions = 0, rows = 0, failed = 0}

--- One round of run_rounds; false when it was the last.
local function one_round(round, max_rounds, label, force_ddl)
  local last = one_time or (max_rounds > 0 and round >= max_rounds)
  totals.rounds = totals.rounds + 1
  local failures
  if last then
    failures = sync_round(totals.rounds, force_ddl, last)
  else
    -- Like the tool, a loop survives a bad round (an FE restarting, a dropped table): the next
    -- round starts over. What the manual says terminates the migration still does.
    local ok, err = pcall(sync_round, totals.rounds, force_ddl, last)
    if not ok then
      if type(err) == "table" and (err.kind == "conflict" or err.kind == "usage" or err.kind == "auth") then
        error(err, 0)
      end
      ferry.log.error(("round %d failed: %s; the next round starts in %ds"):format(totals.rounds,
        type(err) == "table" and (err.message or tostring(err)) or tostring(err), cfg.replication_job_interval_seconds))
      last_meta = nil -- read the DDL again
    end
    failures = ok and err or {}
  end
  totals.partitions = totals.partitions + counters.finished
  totals.rows = totals.rows + counters.rows
  if last then
    for _, f in ipairs(ddl_failures) do failures[#failures + 1] = "DDL " .. f end
    if #failures > 0 then
      totals.failed = totals.failed + #failures
      ferry.fail("unavailable", ("%s: %d job(s) failed: %s"):format(label, #failures,
        table.concat(failures, "; ")),
        {hint = "fix the cause, then run the same command again: copied partitions are not copied again, " ..
          "a retried load reuses its label"})
    end
    return false
  end
  ferry.task.sleep(math.max(cfg.replication_job_interval_seconds, 0))
  return true
end

local function run_rounds(max_rounds, label, force_ddl)
  -- Progress every report_interval_seconds, also in the middle of a long round.
  local reporter = ferry.task.spawn(function()
    while true do
      ferry.task.sleep(math.max(cfg.report_interval_seconds, 1))
      if os.time() - last_report >= cfg.report_interval_seconds then report() end
    end
  end)
  local ok, err = pcall(function()
    local round = 0
    while true do
      round = round + 1
      if not one_round(round, max_rounds, label, force_ddl) then return end
    end
  end)
  reporter:cancel()
  if not ok then error(err, 0) end
end


ferry.step("data-sync", "Data sync: copy the partitions whose source version moved, every interval", function()
  if p.recopy then
    local again = sr.selector(p.recopy, {})
    for _, obj in ipairs(scope) do
      if obj.kind == "table" and again.table(obj.db, obj.name) then
        ferry.log.info(("%s.%s: every partition is copied again (recopy)"):format(obj.db, obj.name))
        ferry.state.set(synced_key(obj.db, obj.name), {})
      end
    end
  end
  run_rounds(p.rounds, "data sync")
  return {rounds = totals.rounds, partitions = totals.partitions, rows = totals.rows}
end, {always = true})

---------------------------------------------------------------------------------------------------
-- Step 4: verify [manual: View Table Row Count, View Partition Data Versions]
---------------------------------------------------------------------------------------------------


ferry.step("verify", "Verify: row counts per table on both sides, per partition where they differ", function()
  if ferry.dry_run() then
    ferry.log.info("dry run: nothing was copied, so nothing to verify")
    return {}
  end
  local r = sr.verify_counts(src, dst, scope, false)
  if r.tables_differ > 0 then
    ferry.log.warn("row counts differ: the source may still take writes (the next round copies what moved); " ..
      "if the target was written to, -p recopy=<db.table,...> copies those tables again")
  end
  return r
end, {always = true})

---------------------------------------------------------------------------------------------------
-- Step 5: cutover [manual: After Migration]
---------------------------------------------------------------------------------------------------

ferry.step("cutover", "Cutover checklist: writes stopped, a last sync at 100%, FE settings restored", function()
  if not p.cutover then
    ferry.log.info("cutover not requested: when the business is ready, stop writes to the source and run " ..
      "the same command with -p cutover=true")
    return {done = false}
  end
  ferry.confirm("Writes to the source cluster are stopped (no loads, no DDL)?")
  run_rounds(1, "last sync", true)
  if counters.failed > 0 or counters.finished ~= counters.jobs then
    ferry.fail("conflict", "the last sync did not reach 100%", {hint = "run the same command again"})
  end
  -- Nothing may lag after the last round: re-read the source versions.
  counters = sr.new_counters()
  local lag = {}
  for _, obj in ipairs(scope) do
    if obj.kind == "table" and obj.state == "ok" then
      local s = synced(obj.db, obj.name)
      for _, part in ipairs(partitions_of(src, obj.db, obj.name)) do
        -- A compaction since the last round is no lag (shared-data sources compact on their own).
        if sr.partition_moved(s[part.name], part) == true then
          lag[#lag + 1] = obj.db .. "." .. obj.name .. "/" .. part.name
        end
      end
    end
  end
  if #lag > 0 then
    ferry.fail("conflict", "the source moved during the last sync: " .. table.concat(lag, ", "),
      {hint = "writes are still reaching the source; stop them and run the same command again"})
  end
  ferry.log.info("Sync job progress: 100.00% after writes stopped")
  local checked = sr.verify_counts(src, dst, scope, true)
  ferry.confirm(("The last sync reached 100%% and %d tables have equal row counts on both clusters; " ..
    "go on with the cutover?"):format(checked.tables_equal))
  ferry.confirm("Stop using the migration and point applications to the target cluster now?")
  local recorded = ferry.state.get("fe_settings_before") or {}
  local keys = {}
  for k in pairs(recorded) do keys[#keys + 1] = k end
  table.sort(keys)
  if #keys > 0 then
    local lines = {}
    for _, k in ipairs(keys) do lines[#lines + 1] = k .. "=" .. recorded[k] end
    ferry.confirm("Restore on the target FE: " .. table.concat(lines, ", ") .. "?")
    for _, k in ipairs(keys) do
      dst:exec(('ADMIN SET FRONTEND CONFIG ("%s" = "%s")'):format(k, recorded[k]))
      ferry.log.info(("restored target FE %s=%s"):format(k, recorded[k]))
      ferry.log.warn(("remove `%s = ...` from fe.conf on every target FE"):format(k))
    end
  end
  return {done = true, restored = #keys}
end, {always = true})
