-- Migrate Cassandra/DSE/HCD snapshots into Astra DB with Sideloader: snapshot, check, upload with self-renewing credentials, launch, watch.
--
-- The vendor procedure "Migrate data with Astra DB Sideloader" as a runbook: nodetool snapshot on
-- every node (and listsnapshots to check), a stop for what cannot migrate (materialized views,
-- encrypted tables), secondary index directories left out of the upload (the snapshot is not
-- touched), the CREATE statements to recreate in Astra, the DevOps API initialize (the migration
-- id is kept in the state dir, so a re-run continues the same migration), the upload of every
-- snapshot file of every node to uploadBucketDir/<node>/<path below the data dir> with the
-- credentials the API returns (AWS session tokens, Azure SAS, GCP keys), fetched again before they
-- expire, files already uploaded with the same size skipped, a listing check, then launch and
-- polling to MigrationDone. `-p action=status|pause|resume|abort|reschedule-cleanup` act on the
-- migration. See docs/procedures/astra-sideloader.md.

local astra = require "ferry.astra"

local p = ferry.params{
  {name = "token", type = "string", required = true, secret = true, env = "token",
   doc = "Astra application token (Database Administrator, or Create DB + View DB); also read from $token"},
  {name = "db_id", type = "string", required = true, env = "dbID", doc = "target database id (also $dbID)"},
  {name = "api_url", type = "url", default = astra.DEFAULT_API, doc = "DevOps API base URL"},
  {name = "snapshot", type = "string", doc = "snapshot name (the same on every node); required to migrate"},
  {name = "keyspaces", type = "list", doc = "keyspaces or keyspace.table to migrate (default: every non-system keyspace)"},
  {name = "data_dirs", type = "list", default = "/var/lib/cassandra/data",
   doc = "Cassandra data_file_directories as this machine sees them; {node} is replaced by the node name"},
  {name = "node", type = "list", doc = "node name(s): each gets its own directory in the migration (default: this host's name)"},
  {name = "nodetool", type = "string", default = "nodetool",
   doc = "command that runs nodetool on a node; {node} is replaced, e.g. 'ssh {node} nodetool'"},
  {name = "create_snapshot", type = "boolean", default = true,
   doc = "run nodetool snapshot (false: use snapshots that already exist)"},
  {name = "action", type = "string", default = "migrate",
   choices = {"migrate", "status", "pause", "resume", "abort", "reschedule-cleanup"},
   doc = "migrate, or act on the migration of this state dir (or migration_id)"},
  {name = "migration_id", type = "string", doc = "an existing migration to continue or act on"},
  {name = "cleanup_time", type = "string",
   doc = "reschedule cleanup to this ISO time (2025-03-31T14:30:00Z) or this long from now (14d); " ..
     "with action=migrate, done once the migration is ReceivingFiles (uploads do not reset the one-week idle timer)"},
  {name = "poll_interval", type = "duration", default = "60s", doc = "how often to poll the migration status"},
  {name = "init_timeout", type = "duration", default = "1h", doc = "how long initialization may take"},
  {name = "import_timeout", type = "duration", default = "7d", doc = "how long the import may take"},
  {name = "launch_lag", type = "duration", default = "10m",
   doc = "how long the status may still say ReceivingFiles after a launch: a run stopped between sending the " ..
     "launch and recording it waits this long for the status to follow before launching again"},
  {name = "concurrency", type = "integer", default = 8, doc = "files uploaded at once"},
  {name = "renew_before", type = "duration", default = "10m",
   doc = "fetch new upload credentials when the current ones expire within this (AWS: 1 hour lifetime)"},
  {name = "gcs_endpoint", type = "url",
   doc = "GCS JSON API endpoint of the migration bucket (GCP; default https://storage.googleapis.com, " ..
     "or a Private Service Connect endpoint; an http:// one is used as given)"},
  {name = "aws_region", type = "string", doc = "region of the migration bucket (AWS; default: the bucket says it, HeadBucket x-amz-bucket-region; then AWS_REGION)"},
  {name = "allow_views", type = "boolean", default = false,
   doc = "leave materialized views' tables out instead of stopping (Astra has no materialized views)"},
}

-- An empty id would put `//` in every API path (the API answers "Moved Permanently"): refuse it
-- before any step, as a bad parameter.
for _, name in ipairs({"db_id", "migration_id"}) do
  if p[name] ~= nil and not p[name]:find("%S") then
    ferry.fail("usage", ("parameter '%s' is empty"):format(name),
      {hint = name == "db_id" and "give the target database id (-p db_id=... or $dbID)" or
        "leave migration_id out to start or continue the migration of this state dir"})
  end
end

local base = p.api_url:gsub("/+$", "") .. "/v2/databases/" .. p.db_id .. "/migrations"

-- DevOps API client (lua/ferry/astra_api.lua)
local devops = require "ferry.astra_api"
local client = devops.client(base, p)
local api, describe, show, status, wait_for = client.api, client.describe, client.show, client.status, client.wait_for

local function migration_id()
  return p.migration_id or ferry.state.get("migration_id")
end

------------------------------------------------------------------------------------------------
-- Actions on an existing migration
------------------------------------------------------------------------------------------------

if p.action ~= "migrate" then
  local id = migration_id()
  if not id then ferry.fail("usage", "no migration in this state dir: give -p migration_id=...") end
  ferry.step(p.action, "Migration " .. id .. ": " .. p.action, function()
    if p.action == "status" then
      local s, why = status(id)
      if not s then ferry.fail("unavailable", why) end
      show(s)
      return {status = s.status, cleanup = s.expectedCleanupTime}
    end
    local query
    local path = "/" .. id .. "/" .. p.action
    if p.action == "reschedule-cleanup" then
      if not p.cleanup_time then ferry.fail("usage", "reschedule-cleanup needs -p cleanup_time=...") end
      path = "/" .. id .. "/cleanup"
      query = {["option.cleanupTime"] = devops.cleanup_time(p.cleanup_time)}
    elseif p.action == "abort" then
      ferry.confirm("Abort migration " .. id .. "? All its progress is removed (only possible before " ..
        "Sideloader imports SSTable metadata).")
    end
    local _, r, words = api("POST", path, {query = query})
    if r.dry_run then return end
    if r.status >= 300 then
      ferry.fail("conflict", ("%s refused (HTTP %d): %s"):format(p.action, r.status, tostring(words)))
    end
    local s = status(id)
    if s then show(s) end
    return {status = s and s.status, cleanup = s and s.expectedCleanupTime}
  end, {always = true}) -- an action on the remote migration: run it every time it is asked for
  return
end

------------------------------------------------------------------------------------------------
-- migrate
------------------------------------------------------------------------------------------------

if not p.snapshot then ferry.fail("usage", "missing parameter 'snapshot' (the snapshot name to create or use)") end
local nodes = p.node
if not nodes then
  local h = ferry.exec.run{"hostname", check = true, read_only = true}
  nodes = {(h.stdout:gsub("%s+$", ""))}
end

-- keyspaces filter: ks or ks.table
local want_ks, want_table
if p.keyspaces then
  want_ks, want_table = {}, {}
  for _, k in ipairs(p.keyspaces) do
    local ks, t = k:match("^([^.]+)%.(.+)$")
    if ks then want_table[ks .. "." .. t] = true; want_ks[ks] = want_ks[ks] or "some" else want_ks[k] = "all" end
  end
end
local function wanted(ks, t)
  if not want_ks then return true end
  return want_ks[ks] == "all" or want_table[ks .. "." .. t] == true
end

local function data_dirs(node)
  local out = {}
  for i, d in ipairs(p.data_dirs) do out[i] = (d:gsub("{node}", node):gsub("/+$", "")) end
  return out
end

-- Every snapshot dir of every node: {node, data_dir, dir...}
local function inventory()
  local all = {}
  for _, node in ipairs(nodes) do
    for _, dd in ipairs(data_dirs(node)) do
      for _, d in ipairs(astra.snapshot_dirs(dd, p.snapshot, wanted)) do
        d.node, d.data_dir = node, dd
        all[#all + 1] = d
      end
    end
  end
  return all
end

-- A table's schema.cql is in the snapshot dir of one data dir only (Cassandra's
-- Directories.getSnapshotSchemaFile: getDirectoryForNewSSTables(), which need not hold any of the
-- table's SSTables): the parsed schema of the table of snapshot dir `d`, from whichever data dir
-- of its node has it; nil when none has.
local schemas = {}
local function schema_of(d)
  local id = d.node .. "/" .. d.rel
  if schemas[id] == nil then
    schemas[id] = false
    for _, dd in ipairs(data_dirs(d.node)) do
      local path = dd .. "/" .. d.rel .. "/schema.cql"
      if ferry.fs.exists(path) then
        schemas[id] = astra.parse_schema(ferry.fs.read(path))
        break
      end
    end
  end
  return schemas[id] or nil
end

--- A view's snapshot: its schema.cql creates a materialized view and no table.
local function is_view(s)
  return s ~= nil and #s.views > 0 and #s.tables == 0
end

ferry.step("create-snapshots", "Create snapshots on every node (nodetool snapshot) and check them (listsnapshots)", function()
  local counters = {nodes = #nodes}
  -- listsnapshots of one node: the rows of this snapshot for the wanted tables
  local function listed(argv, node)
    local list = {table.unpack(argv)}
    list[#list + 1] = "listsnapshots"
    list.check, list.read_only = false, true
    local r = ferry.exec.run(list)
    if r.code ~= 0 then
      ferry.fail("exec", ("nodetool listsnapshots on %s failed (exit %d): %s"):format(node, r.code,
        astra.nodetool_error(r.stderr ~= "" and r.stderr or r.stdout)),
        {hint = "check the nodetool parameter (" .. p.nodetool .. ") and that the node's JMX port answers, " ..
          "then run the same command again (snapshots taken on other nodes are reused)"})
    end
    -- 3.x rows run together where a value fills its column: the names on disk take them apart
    local known = astra.names_on_disk(data_dirs(node))
    known.snapshots = {[p.snapshot] = true}
    local rows = {}
    for _, row in ipairs(astra.parse_listsnapshots(r.stdout, known)) do
      if row.snapshot == p.snapshot and wanted(row.keyspace, row.table) then rows[#rows + 1] = row end
    end
    return rows
  end
  for _, node in ipairs(nodes) do
    local argv = astra.command(p.nodetool, node)
    local existing = p.create_snapshot and listed(argv, node) or {}
    if #existing > 0 then
      -- a re-run after a failure on another node: nodetool would refuse "already exists"
      ferry.log.info(("%s: snapshot %s exists already (%d table(s)), using it"):format(node, p.snapshot, #existing))
    elseif p.create_snapshot then
      local cmd = {table.unpack(argv)}
      cmd[#cmd + 1] = "snapshot"
      cmd[#cmd + 1] = "-t"
      cmd[#cmd + 1] = p.snapshot
      if want_table and next(want_table) then
        local list = {}
        for _, k in ipairs(p.keyspaces) do
          list[#list + 1] = k:find("%.") and k or nil
        end
        for _, k in ipairs(p.keyspaces) do
          if not k:find("%.") then
            ferry.fail("usage", "keyspaces mixes keyspaces and keyspace.table entries; nodetool takes one or the other")
          end
        end
        cmd[#cmd + 1] = "-kt"
        cmd[#cmd + 1] = table.concat(list, ",")
      elseif p.keyspaces then
        for _, k in ipairs(p.keyspaces) do cmd[#cmd + 1] = k end
      end
      cmd.check = false
      local r = ferry.exec.run(cmd)
      if r.code ~= 0 then
        ferry.fail("exec", ("nodetool snapshot on %s failed (exit %d): %s"):format(node, r.code,
          astra.nodetool_error(r.stderr ~= "" and r.stderr or r.stdout)),
          {hint = "fix the cause and run the same command again: snapshots already taken on other nodes are reused"})
      end
      ferry.log.info(("%s: %s"):format(node, (r.stdout:gsub("%s+$", ""):gsub("\n", " "))))
    end
    local n = 0
    for _, row in ipairs(listed(argv, node)) do
      n = n + 1
      ferry.log.info(("%s: snapshot %s of %s.%s, %s on disk"):format(node, row.snapshot, row.keyspace, row.table,
        row.size_on_disk or "?"))
    end
    if n == 0 and not ferry.dry_run() then
      ferry.fail("not_found", ("nodetool listsnapshots on %s shows no snapshot named %s%s"):format(node, p.snapshot,
        p.keyspaces and (" for " .. table.concat(p.keyspaces, ",")) or ""))
    end
    counters[node .. "_tables"] = n
  end
  return counters
end)

ferry.step("origin-checks", "Check what cannot migrate (schema.cql of every snapshot)", function()
  local views, encrypted, indexes, tables = {}, {}, {}, 0
  local seen, named = {}, {}
  for _, d in ipairs(inventory()) do
    local s = schema_of(d)
    local name = d.keyspace .. "." .. d.table
    if not seen[d.node .. "/" .. d.rel] then
      seen[d.node .. "/" .. d.rel] = true
      tables = tables + 1
    end
    if s and not named[name] then
      named[name] = true
      if is_view(s) then views[#views + 1] = name end
      if s.encrypted then encrypted[#encrypted + 1] = name end
      for _, stmt in ipairs(s.unparsed) do
        ferry.log.warn(("schema.cql of %s: statement not understood, check it by hand: %s"):format(name, stmt))
      end
      for _, ix in ipairs(s.indexes) do
        if not seen[name .. "." .. tostring(ix.name)] then
          seen[name .. "." .. tostring(ix.name)] = true
          indexes[#indexes + 1] = ("%s (%s)"):format(tostring(ix.name), ix.sai and "SAI, ignored" or "secondary index, its directory is not uploaded")
        end
      end
    end
  end
  if tables == 0 and not ferry.dry_run() then
    ferry.fail("not_found", ("no snapshot named %s under %s"):format(p.snapshot, table.concat(p.data_dirs, ", ")),
      {hint = "check data_dirs (the data_file_directories of cassandra.yaml) and the snapshot name"})
  end
  for _, ix in ipairs(indexes) do ferry.log.info("index " .. ix) end
  if #encrypted > 0 then
    ferry.fail("invalid_input", ("encrypted tables cannot be migrated by Sideloader: %s"):format(table.concat(encrypted, ", ")),
      {hint = "leave them out with keyspaces=ks.table,... and move them with Cassandra Data Migrator"})
  end
  if #views > 0 and not p.allow_views then
    ferry.fail("invalid_input", ("materialized views cannot be migrated (Astra has none): %s"):format(table.concat(views, ", ")),
      {hint = "snapshot only the base tables (keyspaces=ks.table,...), or -p allow_views=true to leave them out; " ..
        "replace views with SAI or a new table in Astra"})
  end
  return {tables = tables, views = #views, indexes = #indexes}
end)

-- The files to upload: every snapshot file of every node but secondary index dirs and views.
local function files_to_upload()
  local files, excluded, bytes = {}, {}, 0
  for _, d in ipairs(inventory()) do
    -- a view's files in every data dir, not only where its schema.cql is
    if not is_view(schema_of(d)) then
      local fs_, index_dirs = astra.snapshot_files(d)
      for _, f in ipairs(fs_) do
        f.node, f.key = d.node, astra.key(d.node, f.rel)
        files[#files + 1] = f
        bytes = bytes + f.size
      end
      for _, ix in ipairs(index_dirs) do
        excluded[#excluded + 1] = ("%s: %s/.%s"):format(d.node, d.rel, ix)
      end
    end
  end
  table.sort(files, function(a, b) return a.key < b.key end)
  return files, excluded, bytes
end

ferry.step("schema", "Recreate the schema in Astra", function()
  local stmts, seen = {}, {}
  for _, d in ipairs(inventory()) do
    local s = schema_of(d)
    if s then
      for _, group in ipairs({s.types, s.tables}) do
        for _, stmt in ipairs(group) do
          if not seen[stmt] then seen[stmt] = true; stmts[#stmts + 1] = stmt end
        end
      end
    end
  end
  ferry.log.info("create these in the target database (same keyspace, table and column names, column " ..
    "order and primary key; Astra ignores options such as compaction):\n\n" .. table.concat(stmts, "\n\n") .. "\n")
  ferry.confirm("Do the keyspaces and tables above exist in Astra database " .. p.db_id .. " with exactly this schema?")
  return {statements = #stmts}
end)

ferry.step("initialize", "Initialize the migration (DevOps API)", function(ctx)
  local id = migration_id()
  if id then
    ferry.log.info("continuing migration " .. id)
  else
    local earlier = ctx:checkpoint("initialize_sent")
    if earlier then
      -- The DevOps API has no call that lists a database's migrations, so the one that request
      -- may have created cannot be found; it holds no file and goes at its cleanup time.
      ferry.log.warn(("a run stopped after asking Astra to initialize a migration (at %s) and before its " ..
        "answer was saved: if Astra created that migration, it holds no files and is removed at its cleanup " ..
        "time; initializing a new one"):format(os.date("!%Y-%m-%dT%H:%M:%SZ", earlier)))
    end
    -- recorded before sending, like the launch: a lost answer is then known and said
    if not ferry.dry_run() then ctx:checkpoint("initialize_sent", os.time()) end
    local s, r, words = api("POST", "/initialize")
    if r.dry_run then return end
    if not s then
      ferry.fail("unavailable", ("initialize failed (HTTP %d): %s"):format(r.status, tostring(words)))
    end
    id = s.migrationID
    ferry.state.set("migration_id", id)
    ctx:checkpoint("migration_id", id)
    show(s)
  end
  local s = wait_for(id, function(x) return x.status ~= "Initializing" end, p.init_timeout,
    "migration " .. id .. " to leave Initializing")
  if s.status == "ImportInProgress" or s.status == "MigrationDone" then
    -- a re-run (other parameters) after the launch: the next steps only watch and report
    ferry.log.info(("migration %s was launched already (%s)"):format(id, s.status))
    return {migration_id = id, status = s.status, cleanup = s.expectedCleanupTime}
  end
  if s.status ~= "ReceivingFiles" then
    ferry.fail("conflict", ("migration %s is %s, not ReceivingFiles: files cannot be uploaded"):format(id, describe(s)),
      {hint = "a launched migration cannot take more files; start a new one with a fresh state dir"})
  end
  if p.cleanup_time then
    local when = devops.cleanup_time(p.cleanup_time)
    local _, r, words = api("POST", "/" .. id .. "/cleanup", {query = {["option.cleanupTime"] = when}})
    if not r.dry_run then
      if r.status >= 300 then
        ferry.fail("conflict", ("rescheduling the cleanup to %s was refused (HTTP %d): %s"):format(when, r.status,
          tostring(words)))
      end
      s = status(id) or s
      show(s)
    end
  end
  return {migration_id = id, upload_dir = s.uploadBucketDir, cleanup = s.expectedCleanupTime}
end)

ferry.step("upload", "Upload every snapshot file of every node", function()
  local id = migration_id()
  if not id then return end
  local files, excluded, total = files_to_upload()
  for _, e in ipairs(excluded) do ferry.log.info("left out (secondary index): " .. e) end
  local now = status(id)
  if now and (now.status == "ImportInProgress" or now.status == "MigrationDone") then
    ferry.log.info(("migration %s was launched already (%s): its directory is closed, nothing to upload"):format(
      id, now.status))
    return {files = #files, bytes = total, uploaded = 0}
  end

  -- Upload credentials from the migration status, renewed before they expire (astra_api.lua).
  local creds = devops.credentials(client, id, p)
  local renew, current = creds.renew, creds.current
  local dst = renew()

  -- What is there already (complete objects only: a killed upload leaves nothing).
  local have = {}
  for _, node in ipairs(nodes) do
    for e in dst:list(node) do have[e.key] = e.size end
  end
  local todo, skipped = {}, 0
  for _, f in ipairs(files) do
    if have[f.key] == f.size then skipped = skipped + 1 else todo[#todo + 1] = f end
  end
  local todo_bytes = 0
  for _, f in ipairs(todo) do todo_bytes = todo_bytes + f.size end
  ferry.log.info(("%d file(s), %d bytes: %d already uploaded, %d to upload (%d bytes) to %s"):format(
    #files, total, skipped, #todo, todo_bytes, current.dir))
  local progress = ferry.log.progress{title = "upload", total = todo_bytes, unit = "bytes"}
  local failures = {}
  -- Renew in the background too: a long upload (one big multipart Data.db) may be all that runs
  -- when the credentials near their expiry, and no new file start would renew them.
  local renewer = ferry.task.spawn(function()
    while true do
      local wait = (current.expires or os.time()) - p.renew_before - os.time()
      ferry.task.sleep(math.max(0.2, math.min(wait, math.max(p.poll_interval, 1))))
      local ok, err = pcall(renew)
      if not ok then ferry.log.debug("background credential renewal: " .. tostring(err)) end
    end
  end)
  ferry.task.parallel(todo, {concurrency = p.concurrency, fail_fast = false}, function(f)
    local ok, err = pcall(function()
      local store, gen = renew()
      local ok1, e1 = pcall(store.put_file, store, f.path, f.key)
      if not ok1 then
        -- the credentials may have expired or been rotated early: renew and retry once
        ferry.log.debug(("%s: %s; retrying with fresh credentials"):format(f.key, tostring(e1)))
        store = renew(gen)
        store:put_file(f.path, f.key)
      end
    end)
    progress:inc(f.size)
    if not ok then failures[#failures + 1] = f.key .. ": " .. tostring(err) end
  end)
  renewer:cancel()
  creds.settle() -- the renewer may have been cancelled inside a renewal
  progress:finish()
  if #failures > 0 then
    table.sort(failures)
    ferry.fail("io", ("%d file(s) failed to upload:\n  %s"):format(#failures,
      table.concat(failures, "\n  ", 1, math.min(10, #failures))),
      {hint = "run the same command again: uploaded files are skipped and the same migration continues"})
  end

  -- Verify: list the migration directory against the local files.
  dst = renew()
  local listed = {}
  for _, node in ipairs(nodes) do
    for e in dst:list(node) do listed[e.key] = e.size end
  end
  local missing = {}
  for _, f in ipairs(files) do
    if listed[f.key] ~= f.size and not ferry.dry_run() then
      missing[#missing + 1] = ("%s (local %d bytes, uploaded %s)"):format(f.key, f.size, tostring(listed[f.key]))
    end
  end
  if #missing > 0 then
    ferry.fail("conflict", ("%d file(s) are not in the migration directory as they are locally:\n  %s"):format(
      #missing, table.concat(missing, "\n  ", 1, math.min(10, #missing))), {hint = "run the same command again"})
  end
  ferry.log.info(("the migration directory holds all %d file(s) (%d bytes)"):format(#files, total))
  return {files = #files, bytes = total, uploaded = #todo, already_there = skipped, index_dirs_left_out = #excluded}
end)

ferry.step("launch", "Launch the import and wait for MigrationDone", function(ctx)
  local id = migration_id()
  if not id then return end
  local s = status(id)
  if s and s.status == "MigrationDone" then
    show(s)
    return {status = s.status}
  end
  if s and s.status ~= "ReceivingFiles" and s.status ~= "ImportInProgress" and s.status ~= "Initializing"
     and (ctx:checkpoint("launch_sent") or ctx:checkpoint("launched")) then
    -- The earlier launch ended (ImportFailed, ...): the operator fixed the cause and runs again
    -- to relaunch, as the hint of that failure says. Forget it so this run launches.
    ctx:checkpoint("launch_sent", false)
    ctx:checkpoint("launched", false)
  end
  local sent = ctx:checkpoint("launch_sent")
  if sent and not ctx:checkpoint("launched") and s and s.status == "ReceivingFiles" then
    -- A run stopped after sending the launch, before its answer was recorded: the status lags
    -- behind a launch, so ReceivingFiles does not tell whether the launch arrived. Launching
    -- again would import the migration twice; wait out the lag first.
    ferry.log.info(("a launch of migration %s was sent by an earlier run: waiting up to %ss for the status to " ..
      "follow before sending it again"):format(id, p.launch_lag))
    local deadline = os.time() + p.launch_lag
    while s and s.status == "ReceivingFiles" and os.time() < deadline do
      ferry.task.sleep(p.poll_interval)
      s = status(id) or s
    end
    if s and s.status ~= "ReceivingFiles" then ctx:checkpoint("launched", sent) end
  end
  if not (s and (s.status == "ImportInProgress" or s.status == "MigrationDone" or ctx:checkpoint("launched"))) then
    ferry.confirm("Launch the import of migration " .. id .. "? Uploads close now, and once Sideloader imports " ..
      "SSTable metadata the migration cannot be aborted.")
    -- recorded before sending: a run stopped before the answer must not launch again blindly
    if not ferry.dry_run() then ctx:checkpoint("launch_sent", os.time()) end
    local _, r, words = api("POST", "/" .. id .. "/launch")
    if r.dry_run then return end
    if r.status >= 300 then
      ferry.fail("conflict", ("launch refused (HTTP %d): %s"):format(r.status, tostring(words)))
    end
    ctx:checkpoint("launched", os.time())
    ferry.log.info("import launched; the API may show the old status for a few minutes")
  end
  local launched_at = ctx:checkpoint("launched") or os.time()
  local final = ferry.task.poll{
    every = p.poll_interval, timeout = p.import_timeout, describe = "migration " .. id .. " to reach MigrationDone",
    check = function()
      local st, why = status(id)
      if not st then return false, why end
      show(st)
      if st.status == "MigrationDone" then return st end
      if st.status == "ReceivingFiles" and os.time() - launched_at > 1800 then
        return st -- status lag has limits: still not importing after 30 minutes
      end
      if st.status == "ReceivingFiles" or st.status == "ImportInProgress" or st.status == "Initializing" then
        return false, describe(st)
      end
      return st -- anything else stops the wait
    end,
  }
  if final.status ~= "MigrationDone" then
    local advice = astra.KNOWN[final.status]
      and "see the migration's progressInfo"
      or "an unknown status: ferry stops rather than guess"
    ferry.fail("conflict", ("migration %s ended as %s: %s"):format(id, describe(final), advice),
      {hint = "if the cause can be fixed without changing the uploaded files (most often the target schema: " ..
        "column names, types, order, primary key), fix it and run again to relaunch; if the uploaded data is " ..
        "wrong, abort (-p action=abort) and start over with a new state dir"})
  end
  return {status = final.status}
end)

ferry.step("report", "Validate the migrated data", function()
  local id = migration_id()
  local files, _, total = files_to_upload()
  local tables = {}
  for _, f in ipairs(files) do
    local ks, t = f.rel:match("^([^/]+)/([^/]-)%-%x+/")
    if ks then tables[ks .. "." .. t] = true end
  end
  local names = {}
  for k in pairs(tables) do names[#names + 1] = k end
  table.sort(names)
  ferry.log.info(("migration %s imported %d table(s) from %d node(s), %d file(s), %d bytes: %s"):format(
    tostring(id), #names, #nodes, #files, total, table.concat(names, ", ")))
  ferry.log.info("validate before switching reads: Cassandra Data Migrator in validation mode " ..
    "(spark-submit --class com.datastax.cdm.job.DiffData ...) compares every row; dsbulk count gives row counts. " ..
    "Then clear the snapshots (nodetool clearsnapshot -t " .. p.snapshot .. ").")
  return {tables = #names, files = #files, bytes = total}
end)
