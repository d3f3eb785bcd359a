-- Move Apache Druid segments from local deep storage to S3, GCS, Azure or another directory, and rewrite every segment's loadSpec.
--
-- The vendor procedure "Deep storage migration" (copy segments, export druid_segments, rewrite the
-- load specs, re-import, restart) as a runbook, without export-metadata's traps: Druid 26+ local
-- segments are index/ directories (zipped into index.zip on the way, streamed), rows already off
-- local storage and tombstones are left alone (export-metadata crashes on them), payloads are
-- never passed through CSV text in `direct` mode (no lost backslashes), every other payload field is
-- kept byte for byte, used_status_last_updated (NOT NULL on Druid 28+) is filled, and the metadata
-- changes in one transaction only after every copy was verified. `csv` mode is for Derby: it reads
-- export-metadata's CSV files and writes rewritten ones with import SQL for MySQL, PostgreSQL and
-- Derby. `-p action=rollback` restores the payloads from the backup table. See
-- docs/procedures/druid-deep-storage.md.

local druid = require "ferry.druid"

local p = ferry.params{
  {name = "druid_conf", type = "path",
   doc = "Druid's common.runtime.properties (metadata store type, connectURI, user, password, storage directory)"},
  {name = "target", type = "string", required = true,
   doc = "new deep storage: s3://bucket/baseKey, gs://bucket/prefix, az://container/prefix (or an Azure blob URL with SAS) or file:///dir"},
  {name = "mode", type = "string", default = "direct", choices = {"direct", "csv"},
   doc = "direct: rewrite druid_segments in MySQL/PostgreSQL in one transaction; csv: write rewritten CSV files and import SQL (Derby)"},
  {name = "coordinator_url", type = "url",
   doc = "Coordinator (or Router) base URL; enables the final loadstatus check"},
  {name = "action", type = "string", default = "migrate", choices = {"migrate", "rollback"},
   doc = "migrate, or rollback: put back the payloads saved in the backup table"},
  {name = "metadata_url", type = "string",
   doc = "mysql://user:pass@host:port/db or postgres://...; default: from druid_conf's connectURI, user and password"},
  {name = "metadata_ca", type = "path",
   doc = "a PEM file of CA certificates for a TLS connection to the metadata store (useSSL / sslmode in connectURI)"},
  {name = "storage_dir", type = "path",
   doc = "the local deep storage directory (druid.storage.storageDirectory); default: from druid_conf"},
  {name = "local_root", type = "path",
   doc = "read segment files here instead of storage_dir (when the deep storage is mounted elsewhere on this machine)"},
  {name = "druid_home", type = "path",
   doc = "Druid's distribution root, for a relative storageDirectory (default: the folder holding conf/)"},
  {name = "datasources", type = "list", doc = "migrate only these data sources (default: all)"},
  {name = "base", type = "string", doc = "metadata table base name (druid.metadata.storage.tables.base; default from druid_conf, else druid)"},
  {name = "export_dir", type = "path",
   doc = "csv mode: the folder of export-metadata's CSV files (druid_segments.csv); default: read the metadata store"},
  {name = "csv_columns", type = "list",
   doc = "csv mode: the columns of druid_segments.csv when it has no header and more than 10 columns"},
  {name = "target_columns", type = "list",
   doc = "csv mode: the columns of the druid_segments table the import SQL is for (default: import_url's table, else the source's columns plus used_status_last_updated)"},
  {name = "out_dir", type = "path",
   doc = "where the metadata backup CSV, the rewritten CSV and the import SQL go (default: <state dir>/metadata)"},
  {name = "import_url", type = "string",
   doc = "csv mode: import the rewritten rows into this mysql:// or postgres:// metadata store (otherwise print the commands)"},
  {name = "backup_table", type = "string", doc = "rollback: the backup table to restore from (default: the one this state dir made)"},
  {name = "s3_schema", type = "string", default = "s3n", choices = {"s3n", "s3a", "none"},
   doc = "the S3Schema field Druid's S3 pusher writes (s3a when druid.storage.useS3aSchema=true; none leaves it out)"},
  {name = "skip_missing", type = "boolean", default = false,
   doc = "leave segments whose local files are missing on local storage (reported) instead of failing"},
  {name = "concurrency", type = "integer", default = 8, doc = "segments copied at once"},
  {name = "zip_level", type = "integer", default = 1,
   doc = "deflate level for index/ directories zipped into index.zip (1 fastest .. 9 smallest; 0/stored is refused: Druid's ZipInputStream cannot read streamed STORED entries)"},
  {name = "poll_interval", type = "duration", default = "10s", doc = "how often to ask the Coordinator for loadstatus"},
  {name = "verify_sample", type = "integer", default = 3,
   doc = "verify: objects read back entry by entry as Druid's puller unzips them (java.util.zip.ZipInputStream rules); 0 skips it"},
  {name = "load_timeout", type = "duration", default = "1h", doc = "how long to wait for every data source to load"},
}

-- Streamed zips carry data descriptors; java.util.zip.ZipInputStream (Druid's S3/GCS pullers,
-- CompressionUtils.unzip(InputStream, File)) refuses them after STORED data, so level 0 is out.
if p.zip_level < 1 or p.zip_level > 9 then
  ferry.fail("usage", ("zip_level=%d: use 1 (fastest, the default) to 9 (smallest). Level 0 (stored) would write " ..
    "entries that Druid's S3 and GCS pullers (java.util.zip.ZipInputStream) refuse"):format(p.zip_level))
end

local target = druid.target(p.target)
local conf = p.druid_conf and druid.read_conf(p.druid_conf) or nil
local base = p.base or (conf and conf.base) or "druid"
local out_dir = ferry.fs.absolute(p.out_dir or (ferry.state.dir() .. "/metadata")) -- the SQL files name it
local migration_time = ferry.state.get("migration_time") or druid.now()

-- Where the local deep storage is, and where this machine reads it.
local storage_dir = druid.local_storage_dir(conf, p.storage_dir, p.druid_home)

-- The metadata store (direct mode, rollback, and csv mode without export_dir).
local metadata_url, metadata_problem, connect_opts, pg_schema = druid.metadata_store(conf, p.metadata_url, p.metadata_ca)
local need_db = p.mode == "direct" or p.action == "rollback" or not p.export_dir
if need_db and not metadata_url then
  ferry.fail("usage", metadata_problem or "no metadata store: give druid_conf (common.runtime.properties) or metadata_url",
    {hint = p.mode == "direct" and "Derby users: -p mode=csv -p export_dir=<export-metadata output>" or nil})
end
local db = need_db and ferry.sql.connect(metadata_url, connect_opts) or nil
local segments_table = base .. "_segments"
local segments_sql = druid.qualified_name(db, pg_schema, segments_table)

---------------------------------------------------------------------------------------------------
-- Reading the segments: every row, as {cells = {column -> value}, id, payload}, in table order.
---------------------------------------------------------------------------------------------------

local wanted
if p.datasources then
  wanted = {}
  for _, ds in ipairs(p.datasources) do wanted[ds] = true end
end

local rows, columns
if p.action == "migrate" then
  if p.mode == "csv" and p.export_dir then
    rows, columns = druid.read_csv_rows(p.export_dir, segments_table, p.csv_columns)
  else
    rows, columns = druid.read_db_rows(db, segments_sql)
  end
end
local plan = rows and druid.make_plan(rows, target, {wanted = wanted, s3_schema = p.s3_schema,
  source_path = function(path) return druid.source_path(path, storage_dir, p.local_root) end})

---------------------------------------------------------------------------------------------------
-- The copy manifest: key -> size of every index.zip copied and verified (state dir, one JSON line
-- per object, appended as each one lands, so a killed run resumes without copying it again).
---------------------------------------------------------------------------------------------------

-- A sharded run (docs/scale-out.md): each shard keeps the manifest of its share; the finalize
-- run reads every shard's (druid.read_manifest).
local manifest_path = ferry.state.dir() .. "/copied.jsonl"

-- S3 uploads carry what Druid's S3 pusher would put on them: druid.storage.sse.* encryption and,
-- unless druid.storage.disableAcl=true, the bucket's ACL plus FULL_CONTROL for the bucket owner
-- (read once with GetBucketAcl when the target opens, before anything is copied; lua/ferry/druid.lua
-- s3_options cites the upstream classes).
local s3_opts, s3_shown = {}, {}
if target.kind == "s3" then s3_opts, s3_shown = druid.s3_options(conf) end

-- The import files and the table they go to (csv mode).
local import = {target_columns = p.target_columns, import_url = p.import_url, segments_table = segments_table,
                out_dir = out_dir, pg_schema = pg_schema}

---------------------------------------------------------------------------------------------------
-- rollback
---------------------------------------------------------------------------------------------------

if p.action == "rollback" then
  local backup = p.backup_table or ferry.state.get("backup_table")
  if not backup then
    ferry.fail("usage", "no backup table recorded in " .. ferry.state.dir() .. "; name it with -p backup_table=...")
  end
  local backup_sql = druid.qualified_name(db, pg_schema, backup)
  ferry.step("confirm-shutdown", "Shut down every Druid service that reads segment metadata", function()
    ferry.confirm("Rollback puts the old loadSpecs back into " .. segments_table .. ". Are the Coordinator, " ..
      "Overlord and every other Druid service stopped?")
  end)
  ferry.step("restore", "Restore the payloads saved in " .. backup, function()
    local counts = db:query(("SELECT (SELECT COUNT(*) FROM %s) AS backed_up, " ..
      "(SELECT COUNT(*) FROM %s s WHERE NOT EXISTS (SELECT 1 FROM %s b WHERE b.id = s.id)) AS newer"):format(
      backup_sql, segments_sql, backup_sql))[1]
    local n = 0
    db:transaction(function(tx)
      if db.backend == "mysql" then
        n = tx:exec(("UPDATE %s s JOIN %s b ON s.id = b.id SET s.payload = b.payload WHERE s.payload <> b.payload"):format(
          segments_sql, backup_sql))
      else
        n = tx:exec(("UPDATE %s s SET payload = b.payload FROM %s b WHERE s.id = b.id AND s.payload <> b.payload"):format(
          segments_sql, backup_sql))
      end
    end)
    if (counts.newer or 0) > 0 then
      ferry.log.warn(("%d segment(s) were added after the backup; their loadSpecs point at the new deep storage " ..
        "and were left as they are"):format(counts.newer))
    end
    ferry.log.info(("restored %d payload(s) from %s; restart the Coordinator and Overlord, and set " ..
      "druid.storage.type back to local"):format(n or 0, backup))
    return {restored = n or 0, backed_up = counts.backed_up, newer = counts.newer}
  end)
  return
end

---------------------------------------------------------------------------------------------------
-- migrate
---------------------------------------------------------------------------------------------------

ferry.log.info(("%d segment(s): %d local in %d file(s) to move, %d tombstone(s), %d already off local storage%s%s"):format(
  #rows, plan.local_rows, #plan.order, plan.tombstones, plan.elsewhere,
  plan.already > 0 and (" (" .. plan.already .. " already in the target)") or "",
  plan.filtered > 0 and (", " .. plan.filtered .. " in other data sources") or ""))

ferry.step("confirm-shutdown", "Shut down every Druid service but the Coordinator", function()
  -- The target is checked before the operator stops the cluster: a typo in the bucket or
  -- missing credentials should not cost a shutdown.
  druid.open_target(target, s3_opts, p.target)
  ferry.confirm("Shut down the Overlord, MiddleManagers/Indexers, Historicals, Brokers and Routers so segment " ..
    "metadata stops changing (the Coordinator may keep running; it hosts Derby). Are they stopped?")
end, {sharded = true}) -- answered for each shard before it copies (--yes in pods)

ferry.step("copy-segments", "Copy segments to " .. p.target, function()
  local dst = druid.open_target(target, s3_opts, p.target)
  local manifest = druid.read_manifest()
  local todo, missing, total = {}, {}, 0
  for _, path in ipairs(plan.order) do
    local g = plan.groups[path]
    if not ferry.shard.owns(g.key) then goto next_group end -- another shard's segment file
    local st = ferry.fs.stat(g.src)
    if not st then
      missing[#missing + 1] = g
    else
      g.is_dir = st.is_dir
      if g.is_dir then
        g.bytes = 0
        for _, e in ipairs(ferry.fs.walk(g.src)) do if not e.is_dir then g.bytes = g.bytes + e.size end end
      else
        if not g.src:match("%.zip$") then
          ferry.fail("invalid_input", ("segment %s: %s is neither an index/ directory nor a .zip; ferry does not " ..
            "convert other formats"):format(g.rows[1].id, g.src))
        end
        g.bytes = st.size
      end
      todo[#todo + 1] = g
      total = total + g.bytes
    end
    ::next_group::
  end
  if #missing > 0 then
    local lines = {}
    for i, g in ipairs(missing) do
      if i > 10 then lines[#lines + 1] = ("... and %d more"):format(#missing - 10); break end
      lines[#lines + 1] = ("%s (segment %s)"):format(g.src, g.rows[1].id)
    end
    if not p.skip_missing then
      ferry.fail("not_found", ("%d segment file(s) are missing from local deep storage; nothing was changed in the " ..
        "metadata:\n  %s"):format(#missing, table.concat(lines, "\n  ")),
        {hint = "restore them, or run again with -p skip_missing=true to leave those segments on local storage"})
    end
    ferry.log.warn(("%d segment file(s) are missing and stay on local storage:\n  %s"):format(#missing, table.concat(lines, "\n  ")))
    for _, g in ipairs(missing) do g.skipped = true end
  end

  -- csv mode: rows export-metadata already rewrote (-b/-k, as the vendor document runs it) point
  -- into the target without ferry having copied anything: their objects must be there.
  if p.mode == "csv" and #plan.already_rows > 0 then
    local keys, first = {}, {}
    for _, r in ipairs(plan.already_rows) do
      if not first[r.key] then first[r.key] = r.id; keys[#keys + 1] = r.key end
    end
    table.sort(keys)
    local absent = {}
    ferry.task.parallel(keys, {concurrency = 16}, function(k)
      if ferry.shard.owns(k) and not dst:head(k) then
        local full = target.base ~= "" and (target.base .. "/" .. k) or k
        absent[#absent + 1] = ("%s (segment %s)"):format(full, first[k])
      end
    end)
    table.sort(absent)
    ferry.log.warn(("%d row(s) of the export already point into %s (export-metadata run with -b/-k): ferry did not " ..
      "copy them and checked their %d object(s) with HEAD"):format(#plan.already_rows, p.target, #keys))
    if #absent > 0 then
      ferry.fail("not_found", ("%d object(s) named by already-rewritten rows are missing from %s; nothing was " ..
        "changed:\n  %s"):format(#absent, p.target, table.concat(absent, "\n  ", 1, math.min(#absent, 20))),
        {hint = "copy those segments to the target first, or export again without -b/-k so ferry copies them"})
    end
  end

  local progress = ferry.log.progress{title = "copy segments", total = total, unit = "bytes"}
  local copied, skipped, zipped, bytes, failures = 0, 0, 0, 0, {}
  ferry.task.parallel(todo, {concurrency = p.concurrency, fail_fast = false}, function(g)
    local done = manifest[g.key]
    if done and done.src == g.path then
      local h = dst:head(g.key)
      if h and h.size == done.size then
        g.size = done.size
        skipped = skipped + 1
        progress:inc(g.bytes)
        return
      end
    end
    local ok, err = pcall(function()
      local size, there
      if g.is_dir then
        size = dst:put_zip(g.src, g.key, {level = p.zip_level}).bytes
      else
        local h = dst:head(g.key)
        if h and h.size == g.bytes then
          size, there = h.size, true -- copied by a run whose state dir is gone
        else
          dst:put_file(g.src, g.key)
          size = g.bytes
        end
      end
      if not ferry.dry_run() then
        local h = dst:head(g.key)
        if not h then
          ferry.fail("io", ("%s was uploaded but the target does not have it"):format(g.key))
        elseif h.size ~= size then
          ferry.fail("io", ("%s: the target holds %d bytes, %d were written"):format(g.key, h.size, size))
        end
        ferry.fs.write(manifest_path, ferry.json.encode({key = g.key, size = size, src = g.path}) .. "\n", {append = true})
      end
      g.size = size
      if there then
        skipped = skipped + 1
      else
        copied = copied + 1
        bytes = bytes + size
        if g.is_dir then zipped = zipped + 1 end
      end
    end)
    progress:inc(g.bytes)
    if not ok then
      failures[#failures + 1] = ("%s -> %s: %s"):format(g.src, g.key, tostring(err))
    end
  end)
  progress:finish()
  if #failures > 0 then
    table.sort(failures)
    ferry.fail("io", ("%d of %d segment file(s) failed to copy; the metadata was not changed:\n  %s"):format(
      #failures, #todo, table.concat(failures, "\n  ", 1, math.min(#failures, 10))),
      {hint = "run the same command again: copied segments are not copied twice"})
  end
  ferry.log.info(("copied %d segment file(s) (%d zipped from index/ directories, %d bytes), %d already there; " ..
    "%d tombstone(s) and %d segment(s) off local storage left alone"):format(
    copied, zipped, bytes, skipped, plan.tombstones, plan.elsewhere))
  -- Counts of the whole plan come from one shard only, so finalize's sums over the shards are right.
  local whole_plan = ferry.shard.owns("")
  return {copied = copied, zipped = zipped, already_there = skipped, bytes = bytes, missing = #missing,
          tombstones = whole_plan and plan.tombstones or 0, not_local = whole_plan and plan.elsewhere or 0}
end, {sharded = true}) -- each shard copies the segment files whose target key hashes to it

ferry.step("export-metadata", "Export the segments table (backup table and export-metadata CSV)", function()
  if plan.local_rows == 0 then
    ferry.log.info("no local segments to rewrite; no backup needed")
    return {backup_rows = 0}
  end
  -- The stamp is kept in the state while this step runs: a run stopped inside it is resumed
  -- into the same CSV folder and backup table, not a second one (or a CREATE TABLE that fails
  -- because the first was made in the same second). Cleared once the next step starts.
  local stamp = ferry.state.get("backup_stamp_pending")
  if not stamp then
    stamp = os.date("!%Y%m%d%H%M%S")
    ferry.state.set("backup_stamp_pending", stamp)
  end
  local dir = out_dir .. "/backup-" .. stamp
  ferry.fs.mkdir(dir)
  druid.write_export_csv(dir .. "/" .. segments_table .. ".csv", rows, columns)
  ferry.fs.write(dir .. "/columns.txt", table.concat(columns, ",") .. "\n")
  ferry.state.set("migration_time", migration_time)
  local counters = {backup_rows = #rows, backup_csv = dir .. "/" .. segments_table .. ".csv"}
  if db and p.mode == "direct" then
    local backup = segments_table .. "_backup_" .. stamp
    local backup_sql = druid.qualified_name(db, pg_schema, backup)
    -- A stopped run of this step may have made the table: empty (stopped before the INSERT,
    -- which is one statement) it is filled now; full it is kept.
    local exists, made = pcall(db.query, db, ("SELECT COUNT(*) AS n FROM %s"):format(backup_sql))
    made = exists and made[1] or nil
    local n
    if made and tonumber(made.n) == #rows then
      n = #rows
      ferry.log.info(("the backup table %s was made by an earlier run of this step; kept"):format(backup))
    else
      if not made then
        if db.backend == "mysql" then
          db:exec(("CREATE TABLE %s LIKE %s"):format(backup_sql, segments_sql))
        else
          db:exec(("CREATE TABLE %s (LIKE %s INCLUDING ALL)"):format(backup_sql, segments_sql))
        end
      end
      n = db:exec(("INSERT INTO %s SELECT * FROM %s"):format(backup_sql, segments_sql))
    end
    if not ferry.dry_run() and n ~= #rows then
      ferry.fail("conflict", ("the backup table %s got %d rows but %s has %d: is a Druid service still writing?")
        :format(backup, n, segments_table, #rows))
    end
    ferry.state.set("backup_table", backup)
    counters.backup_table = backup
    ferry.log.info(("backed up %d rows into the table %s and %s"):format(#rows, backup, counters.backup_csv))
  else
    ferry.log.info(("saved %d rows as %s"):format(#rows, counters.backup_csv))
  end
  return counters
end)

---------------------------------------------------------------------------------------------------
-- csv mode: the rewritten CSV files and the import SQL for each metadata store.
---------------------------------------------------------------------------------------------------

ferry.step("rewrite-load-specs", "Rewrite the load specs", function()
  ferry.state.set("backup_stamp_pending", nil) -- export-metadata is done (see there)
  local todo = druid.rewritten_rows(plan, p.skip_missing)
  if p.mode == "direct" then
    if #todo == 0 then
      ferry.log.info("no load spec to rewrite")
      return {rewritten = 0}
    end
    local progress = ferry.log.progress{title = "rewrite load specs", total = #todo}
    db:transaction(function(tx)
      local sql = ("UPDATE %s SET payload = ? WHERE id = ? AND payload = ?"):format(segments_sql)
      for _, r in ipairs(todo) do
        local n = tx:exec(sql, {r.new, r.row.id, r.row.payload})
        if n ~= 1 and not ferry.dry_run() then
          ferry.fail("conflict", ("segment %s changed while ferry rewrote it (%d rows updated); every change of " ..
            "this run is rolled back"):format(r.row.id, n or 0), {hint = "stop every Druid service but the Coordinator and run again"})
        end
        progress:inc(1)
      end
    end)
    progress:finish()
    ferry.log.info(("rewrote %d load spec(s) in %s in one transaction"):format(#todo, segments_table))
    return {rewritten = #todo}
  end
  local new_payload = {}
  for _, r in ipairs(todo) do new_payload[r.row.id] = r.new end
  local all = {}
  for i, row in ipairs(rows) do all[i] = druid.out_cells(row, new_payload[row.id], migration_time) end
  local cols = druid.import_columns(columns, import)
  local has_usl = false
  for _, c in ipairs(cols) do if c:lower() == "used_status_last_updated" then has_usl = true end end
  if not has_usl then
    ferry.log.info("the target " .. segments_table .. " predates used_status_last_updated (Druid < 28): the import " ..
      "files leave it out")
  elseif not druid.target_column_set(import) then
    local src_has = false
    for _, c in ipairs(columns) do if c:lower() == "used_status_last_updated" then src_has = true end end
    if not src_has then
      ferry.log.warn("the import files carry used_status_last_updated (NOT NULL on tables Druid 28+ created); for an " ..
        "older target table give -p target_columns=... (or import_url) so they leave it out")
    end
  end
  local csv_path = druid.write_import_files(all, cols, import)
  ferry.log.info(("wrote %s (%d rows, %d load specs rewritten, payloads in hex) and import-mysql.sql, " ..
    "import-postgresql.sql, import-derby.sql in %s"):format(csv_path, #all, #todo, out_dir))
  return {rewritten = #todo, rows = #all, csv = csv_path}
end)

ferry.step("import", "Import the segments table", function()
  if p.mode == "direct" then
    ferry.log.info("direct mode: " .. segments_table .. " was updated in place")
    return
  end
  if not p.import_url then
    ferry.log.info(("import the rewritten segments with one of (Coordinator stopped, %s empty of these ids):\n" ..
      "  MySQL/MariaDB: mysql --local-infile=1 DB < %s/import-mysql.sql\n" ..
      "  PostgreSQL:    psql -v ON_ERROR_STOP=1 -d DB -f %s/import-postgresql.sql\n" ..
      "  Derby:         ij %s/import-derby.sql"):format(segments_table, out_dir, out_dir, out_dir))
    return {imported = 0}
  end
  local dst = ferry.sql.connect(p.import_url)
  local qi = function(n) return dst.backend == "mysql" and ("`" .. n .. "`") or ('"' .. n:lower() .. '"') end
  local _, target_cols = dst:query("SELECT * FROM " .. qi(segments_table) .. " WHERE 1 = 0")
  local have = {}
  for _, c in ipairs(target_cols) do have[c:lower()] = c end
  local cols, dropped = {}, {}
  for _, c in ipairs(druid.import_columns(columns, import)) do
    if have[c:lower()] then cols[#cols + 1] = c else dropped[#dropped + 1] = c end
  end
  for _, c in ipairs(dropped) do
    if c ~= "used_status_last_updated" then
      ferry.fail("conflict", ("%s in %s has no column %s, which the exported rows carry"):format(
        segments_table, dst.url, c), {hint = "run Druid's metadata-init for the same Druid version first"})
    end
  end
  local csv = ferry.csv.decode(ferry.fs.read(out_dir .. "/" .. segments_table .. ".csv"), {header = false})
  local file_cols = druid.import_columns(columns, import)
  local existing = {}
  for _, r in ipairs(dst:query("SELECT id, payload FROM " .. qi(segments_table))) do existing[r.id] = r.payload end
  local inserts, same = {}, 0
  for _, rec in ipairs(csv) do
    local vals = {}
    for i, c in ipairs(file_cols) do
      local v = rec[i]
      if v == "" and i >= druid.NULLABLE_FROM then v = ferry.sql.null end
      if c == "payload" then v = ferry.hex.decode(v) end
      if druid.BOOLEAN[c] then v = v == "1" end
      vals[c] = v
    end
    local old = existing[vals.id]
    if old == nil then
      local row = {}
      for i, c in ipairs(cols) do row[i] = vals[c] end
      inserts[#inserts + 1] = row
    elseif old == vals.payload then
      same = same + 1
    else
      ferry.fail("conflict", ("%s already holds segment %s with another payload; ferry does not overwrite it"):format(
        segments_table, vals.id), {hint = "import into an empty table, or delete those rows first"})
    end
  end
  local names = {}
  for i, c in ipairs(cols) do names[i] = qi(c) end
  local one = "(" .. string.rep("?", #cols, ", ") .. ")"
  dst:transaction(function(tx)
    for i = 1, #inserts, 200 do
      local params, tuples = {}, {}
      for j = i, math.min(i + 199, #inserts) do
        tuples[#tuples + 1] = one
        for _, v in ipairs(inserts[j]) do params[#params + 1] = v end
      end
      tx:exec(("INSERT INTO %s (%s) VALUES %s"):format(qi(segments_table), table.concat(names, ", "),
        table.concat(tuples, ", ")), params)
    end
  end)
  ferry.log.info(("imported %d segment row(s) into %s (%d were already there, identical)"):format(#inserts, dst.url, same))
  return {imported = #inserts, already_there = same}
end)

ferry.step("confirm-restart", "Switch the cluster to the new deep storage and restart it", function()
  local lines = {}
  if target.kind == "s3" then
    lines = {"druid.storage.type=s3", "druid.storage.bucket=" .. target.bucket, "druid.storage.baseKey=" .. target.base,
             "druid.extensions.loadList: add \"druid-s3-extensions\""}
    for _, l in ipairs(s3_shown) do lines[#lines + 1] = l end
  elseif target.kind == "google" then
    -- GoogleAccountConfig (bound under druid.google): bucket, and prefix, which
    -- GoogleDataSegmentPusher.buildPath leaves out when empty (an empty value here is the same).
    -- GoogleStorageDruidModule builds its client with StorageOptions.getDefaultInstance(), i.e.
    -- Application Default Credentials: there is no druid.google.* credential property.
    lines = {"druid.storage.type=google", "druid.google.bucket=" .. target.bucket, "druid.google.prefix=" .. target.base,
             "druid.extensions.loadList: add \"druid-google-extensions\"",
             "(credentials: Application Default Credentials on every service, e.g. " ..
             "GOOGLE_APPLICATION_CREDENTIALS=<service-account key file>, or the GCE/GKE metadata server)"}
  elseif target.kind == "azure" then
    lines = {"druid.storage.type=azure", "druid.azure.container=" .. target.bucket, "druid.azure.prefix=" .. target.base,
             "druid.extensions.loadList: add \"druid-azure-extensions\""}
  else
    lines = {"druid.storage.type=local", "druid.storage.storageDirectory=" .. target.base}
  end
  ferry.log.info("set in common.runtime.properties on every service:\n  " .. table.concat(lines, "\n  "))
  ferry.confirm("The Coordinator and Overlord cache segment metadata: restart the whole cluster now with the " ..
    "new deep storage settings above (Coordinator and Overlord first). Has it been restarted?")
end)

ferry.step("verify", "Verify every rewritten loadSpec and the Coordinator's load status", function()
  local dst = druid.open_target(target, s3_opts, p.target)
  local manifest = druid.read_manifest()
  local keys, n_rows = {}, 0
  local source_rows
  if p.mode == "direct" then
    source_rows = druid.read_db_rows(db, segments_sql)
  elseif p.import_url then
    local dbi = ferry.sql.connect(p.import_url)
    source_rows = dbi:query("SELECT id, payload, used FROM " ..
      (dbi.backend == "mysql" and "`" .. segments_table .. "`" or segments_table))
  end
  -- expected[dataSource][id] = key for the used rows in the target: what the Coordinator must see.
  local expected = {}
  local function expect(ds, id, key, used)
    if not druid.bool(used) then return end
    expected[ds] = expected[ds] or {}
    expected[ds][id] = key
  end
  if source_rows then
    for _, row in ipairs(source_rows) do
      local seg = druid.segment(row.payload, row.id)
      local key = druid.in_target(target, seg.load_spec)
      if key and (not wanted or wanted[seg.dataSource]) then
        n_rows = n_rows + 1
        keys[key] = keys[key] or row.id
        local used = row.used
        if used == nil and row.cells then used = row.cells.used end
        expect(seg.dataSource, row.id, key, used)
      end
    end
  else
    for _, path in ipairs(plan.order) do
      local g = plan.groups[path]
      n_rows = n_rows + #g.rows
      keys[g.key] = g.rows[1].id
      for _, row in ipairs(g.rows) do expect(row.seg.dataSource, row.id, g.key, row.cells.used) end
    end
    for _, r in ipairs(plan.already_rows) do
      n_rows = n_rows + 1
      keys[r.key] = keys[r.key] or r.id
      expect(r.ds, r.id, r.key, r.used)
    end
  end
  local list = {}
  for k in pairs(keys) do list[#list + 1] = k end
  table.sort(list)
  local problems, unknown = {}, 0
  ferry.task.parallel(list, {concurrency = 16}, function(k)
    local h = dst:head(k)
    local want = manifest[k] and manifest[k].size
    if not h then
      problems[#problems + 1] = ("%s (segment %s): missing"):format(k, keys[k])
    elseif want and h.size ~= want then
      problems[#problems + 1] = ("%s (segment %s): %d bytes, %d were copied"):format(k, keys[k], h.size, want)
    elseif not want then
      unknown = unknown + 1
    end
  end)
  table.sort(problems)
  if #problems > 0 and not ferry.dry_run() then
    ferry.fail("conflict", ("%d rewritten loadSpec(s) point at a missing or wrong object:\n  %s"):format(
      #problems, table.concat(problems, "\n  ", 1, math.min(#problems, 20))),
      {hint = "roll back with -p action=rollback, or copy the files again with --from-step copy-segments"})
  end
  if unknown > 0 then
    ferry.log.warn(("%d object(s) exist but were copied outside this state dir, so their size was not checked"):format(unknown))
  end
  ferry.log.info(("%d segment row(s) point at %d object(s) in %s; all present with the recorded size"):format(
    n_rows, #list, p.target))
  local counters = {rows = n_rows, objects = #list}
  -- Read a sample back the way Druid's S3/GCS pullers do (streaming unzip, every size and CRC):
  -- HEAD proves the object exists, not that Druid can open it.
  if not ferry.dry_run() then
    local sizes = {}
    for k, e in pairs(manifest) do sizes[k] = e.size end
    counters.read_back = druid.read_back(dst, list, sizes, p.verify_sample)
    if p.verify_sample <= 0 then
      ferry.log.warn("verify_sample=0: no object was read back; Druid may still fail to unzip them")
    end
  end
  if p.coordinator_url then
    local n = druid.check_coordinator{url = p.coordinator_url, target = target, expected = expected,
      every = p.poll_interval, timeout = p.load_timeout}
    ferry.log.info(("the Coordinator lists %d data source(s) fully loaded, every used segment with its new loadSpec"):format(n))
    counters.datasources_loaded = n
  end
  return counters
end)
