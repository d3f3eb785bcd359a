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
local storage_dir = p.storage_dir
if not storage_dir and conf then
  if conf.storage_type ~= "local" then
    ferry.log.warn(("%s: druid.storage.type=%s; ferry migrates segments whose loadSpec is local"):format(conf.path, conf.storage_type))
  end
  storage_dir = conf.storage_dir
  if storage_dir:sub(1, 1) ~= "/" then
    storage_dir = (p.druid_home or druid.druid_home(conf.path)) .. "/" .. storage_dir
  end
end
storage_dir = storage_dir and storage_dir:gsub("/+$", "")

local function source_path(path)
  if p.local_root and storage_dir and path:sub(1, #storage_dir + 1) == storage_dir .. "/" then
    return p.local_root .. path:sub(#storage_dir + 1)
  end
  return path
end

-- The metadata store (direct mode, rollback, and csv mode without export_dir).
local metadata_url = p.metadata_url
local metadata_problem
local connect_opts = {ca = p.metadata_ca}
local pg_schema = conf and conf.pg_schema or "public"
if not metadata_url and conf then
  if conf.metadata_type == "derby" then
    metadata_problem = conf.path .. " uses Derby (druid.metadata.storage.type=derby); run export-metadata and use " ..
      "-p mode=csv -p export_dir=DIR"
  else
    -- TLS and schema settings of the JDBC URL and druid.metadata.*.ssl.*: honoured, or refused
    -- (as are URLs naming several servers).
    local j = conf.connect_uri and druid.jdbc_options(conf.connect_uri,
      conf.metadata_type == "postgresql" and conf.postgres_ssl or conf.mysql_ssl, p.metadata_ca) or {}
    metadata_url, metadata_problem = druid.sql_url(conf.connect_uri, conf.user, conf.password)
    if metadata_url then
      connect_opts = {tls = j.tls, ca = j.ca}
      if j.schema then pg_schema = j.schema end
      if j.ignored and #j.ignored > 0 then
        ferry.log.info("connection properties without effect on ferry: " .. table.concat(j.ignored, ", "))
      end
    end
  end
end
local need_db = p.mode == "direct" or p.action == "rollback" or not p.export_dir
if need_db and not metadata_url then
  ferry.fail("usage", metadata_problem or "no metadata store: give druid_conf (common.runtime.properties) or metadata_url",
    {hint = p.mode == "direct" and "Derby users: -p mode=csv -p export_dir=<export-metadata output>" or nil})
end
local db = need_db and ferry.sql.connect(metadata_url, connect_opts) or nil

local function q(name)
  if db and db.backend == "mysql" then return "`" .. name .. "`" end
  return '"' .. name .. '"'
end
local function qualified(name)
  if db and db.backend == "postgres" and pg_schema ~= "public" then
    return q(pg_schema) .. "." .. q(name)
  end
  return db and db.backend == "postgres" and name or q(name)
end
local segments_table = base .. "_segments"

---------------------------------------------------------------------------------------------------
-- Reading the segments: every row, as {cells = {column -> value}, id, payload}, in table order.
---------------------------------------------------------------------------------------------------

local wanted
if p.datasources then
  wanted = {}
  for _, ds in ipairs(p.datasources) do wanted[ds] = true end
end

local function read_db_rows()
  local rows, columns = db:query("SELECT * FROM " .. qualified(segments_table) .. " ORDER BY id")
  local out = {}
  for i, r in ipairs(rows) do
    local cells = {}
    for _, c in ipairs(columns) do cells[c] = r[c] end
    out[i] = {cells = cells, id = r.id, payload = r.payload}
  end
  return out, druid.canonical_columns(columns)
end

local function is_hex_payload(v)
  return #v % 2 == 0 and v:match("^%x+$") and v:sub(1, 2):upper() == "7B"
end

local function read_csv_rows(dir)
  local path = dir .. "/" .. segments_table .. ".csv"
  if not ferry.fs.exists(path) then
    ferry.fail("not_found", "no " .. segments_table .. ".csv in " .. dir,
      {hint = "run export-metadata with -o " .. dir .. " (with -x for hex payloads, which keep backslashes)"})
  end
  local records = ferry.csv.decode(ferry.fs.read(path), {header = false})
  local columns
  if records[1] and records[1][1] == "id" and records[1][2] == "dataSource" then
    columns = table.remove(records, 1)
  elseif p.csv_columns then
    columns = p.csv_columns
  elseif records[1] and #records[1] <= 10 then
    columns = {table.unpack(druid.COLUMNS, 1, #records[1])}
  elseif records[1] then
    ferry.fail("usage", ("%s has %d columns and no header; name them with -p csv_columns=id,dataSource,..."):format(
      path, #records[1]))
  end
  local out = {}
  for i, rec in ipairs(records) do
    if #rec ~= #columns then
      ferry.fail("invalid_input", ("%s line %d has %d fields, expected %d (%s)"):format(
        path, i, #rec, #columns, table.concat(columns, ",")))
    end
    local cells = {}
    for j, c in ipairs(columns) do
      local v = rec[j]
      if v == "" and j > 9 then v = nil end -- NULL is an empty unquoted field
      if c == "payload" and v and is_hex_payload(v) then v = ferry.hex.decode(v) end
      cells[c] = v
    end
    out[i] = {cells = cells, id = cells.id, payload = cells.payload}
  end
  return out, columns
end

---------------------------------------------------------------------------------------------------
-- The plan: which rows are local, the file each points at, and where it goes.
---------------------------------------------------------------------------------------------------

local function make_plan(rows)
  local plan = {groups = {}, order = {}, local_rows = 0, tombstones = 0, elsewhere = 0, filtered = 0,
                already = 0, already_rows = {}, by_type = {}}
  for _, row in ipairs(rows) do
    local seg = druid.segment(row.payload, row.id)
    local spec = seg.load_spec
    if wanted and not wanted[seg.dataSource] then
      plan.filtered = plan.filtered + 1
    elseif spec.type == "tombstone" then
      plan.tombstones = plan.tombstones + 1
    elseif spec.type ~= "local" then
      plan.elsewhere = plan.elsewhere + 1
      plan.by_type[tostring(spec.type)] = (plan.by_type[tostring(spec.type)] or 0) + 1
      local key = druid.in_target(target, spec)
      if key then
        plan.already = plan.already + 1
        plan.already_rows[#plan.already_rows + 1] = {id = row.id, key = key, used = row.cells.used, ds = seg.dataSource}
      end
    elseif type(spec.path) ~= "string" then
      ferry.fail("invalid_input", ("segment %s: local loadSpec without a path"):format(row.id))
    elseif target.kind == "local" and druid.in_target(target, spec) then
      plan.already = plan.already + 1
      plan.elsewhere = plan.elsewhere + 1
      plan.already_rows[#plan.already_rows + 1] = {id = row.id, key = druid.in_target(target, spec),
                                                   used = row.cells.used, ds = seg.dataSource}
    else
      plan.local_rows = plan.local_rows + 1
      local g = plan.groups[spec.path]
      if not g then
        g = {path = spec.path, rows = {}}
        plan.groups[spec.path] = g
        plan.order[#plan.order + 1] = spec.path
      end
      row.seg = seg
      g.rows[#g.rows + 1] = row
    end
  end
  -- Segments that share one file (upgraded_from_segment_id) keep sharing it: the file goes where
  -- Druid would have written it for the segment that owns it, and every row points there.
  for _, path in ipairs(plan.order) do
    local g = plan.groups[path]
    local uuid = druid.unique_id(path)
    local owner
    for _, row in ipairs(g.rows) do
      if path:find("/" .. druid.default_dir(row.seg, uuid) .. "/index", 1, true) then owner = row; break end
    end
    if not owner then
      for _, row in ipairs(g.rows) do
        local up = row.cells.upgraded_from_segment_id
        if up == nil or up == ferry.sql.null or up == "" then owner = row; break end
      end
    end
    owner = owner or g.rows[1]
    g.key = druid.target_key(target, owner.seg, uuid)
    g.spec = druid.load_spec(target, g.key, {s3_schema = p.s3_schema})
    g.is_dir = path:sub(-1) == "/" or not path:match("%.zip$")
    g.src = source_path(path)
  end
  -- Two source files mapped to one target key would overwrite each other and never verify: a
  -- shard spec whose partition ferry misread, or a layout Druid did not write. Stop before any
  -- copy (and in a dry run), naming both.
  local by_key, clashes = {}, {}
  for _, path in ipairs(plan.order) do
    local g = plan.groups[path]
    local other = by_key[g.key]
    if other then
      clashes[#clashes + 1] = ("%s: %s (segment %s) and %s (segment %s)"):format(
        g.key, other.path, other.rows[1].id, path, g.rows[1].id)
    else
      by_key[g.key] = g
    end
  end
  if #clashes > 0 then
    ferry.fail("invalid_input", ("%d target key(s) would receive two different segment files; nothing was " ..
      "copied:\n  %s"):format(#clashes, table.concat(clashes, "\n  ", 1, math.min(#clashes, 20))),
      {hint = "check the shardSpec of these segments (partitionNum, or partitionId for numbered_overwrite)"})
  end
  return plan
end

local rows, columns
if p.action == "migrate" then
  if p.mode == "csv" and p.export_dir then
    rows, columns = read_csv_rows(p.export_dir)
  else
    rows, columns = read_db_rows()
  end
end
local plan = rows and make_plan(rows)

---------------------------------------------------------------------------------------------------
-- The copy manifest: key -> size of every index.zip copied and verified (state dir, one JSON line
-- per object, appended as each one lands, so a killed run resumes without copying it again).
---------------------------------------------------------------------------------------------------

local manifest_path = ferry.state.dir() .. "/copied.jsonl"
-- A sharded run (docs/scale-out.md): each shard keeps the manifest of its share; the finalize
-- run reads every shard's.
local function read_manifest()
  local m = {}
  for _, dir in ipairs(ferry.shard.state_dirs()) do
    local path = dir .. "/copied.jsonl"
    if ferry.fs.exists(path) then
      for line in ferry.fs.read(path):gmatch("[^\n]+") do
        local ok, e = pcall(ferry.json.decode, line)
        if ok and type(e) == "table" and e.key then m[e.key] = e end
      end
    end
  end
  return m
end

-- S3 uploads carry what Druid's S3 pusher would put on them: druid.storage.sse.* encryption and,
-- unless druid.storage.disableAcl=true, the bucket's ACL plus FULL_CONTROL for the bucket owner
-- (read once with GetBucketAcl when the target opens, before anything is copied; lua/ferry/druid.lua
-- s3_options cites the upstream classes).
local s3_opts, s3_shown = {}, {}
if target.kind == "s3" then s3_opts, s3_shown = druid.s3_options(conf) end

-- Opening a store lists the bucket or container (or makes the directory), so a missing bucket,
-- refused credentials or an endpoint nothing answers on show up here: the error names the
-- target and says what to check (druid.target_hint), and that nothing was copied or changed.
local function open_target()
  local o = {create = target.kind == "local"}
  for k, v in pairs(s3_opts) do o[k] = v end
  local ok, store = pcall(ferry.store.open, target.url, o)
  if ok then return store end
  local err = store
  if type(err) ~= "userdata" or not err.kind then error(err, 0) end
  ferry.fail(err.kind, ("%s; nothing was copied and the metadata was not changed"):format(err.message),
    {target = p.target, hint = druid.target_hint(target, err)})
end

---------------------------------------------------------------------------------------------------
-- rollback
---------------------------------------------------------------------------------------------------

if p.action == "rollback" then
  local backup = p.backup_table or ferry.state.get("backup_table")
  if not backup then
    ferry.fail("usage", "no backup table recorded in " .. ferry.state.dir() .. "; name it with -p backup_table=...")
  end
  ferry.step("confirm-shutdown", "Shut down every Druid service that reads segment metadata", function()
    ferry.confirm("Rollback puts the old loadSpecs back into " .. segments_table .. ". Are the Coordinator, " ..
      "Overlord and every other Druid service stopped?")
  end)
  ferry.step("restore", "Restore the payloads saved in " .. backup, function()
    local counts = db:query(("SELECT (SELECT COUNT(*) FROM %s) AS backed_up, " ..
      "(SELECT COUNT(*) FROM %s s WHERE NOT EXISTS (SELECT 1 FROM %s b WHERE b.id = s.id)) AS newer"):format(
      qualified(backup), qualified(segments_table), qualified(backup)))[1]
    local n = 0
    db:transaction(function(tx)
      if db.backend == "mysql" then
        n = tx:exec(("UPDATE %s s JOIN %s b ON s.id = b.id SET s.payload = b.payload WHERE s.payload <> b.payload"):format(
          qualified(segments_table), qualified(backup)))
      else
        n = tx:exec(("UPDATE %s s SET payload = b.payload FROM %s b WHERE s.id = b.id AND s.payload <> b.payload"):format(
          qualified(segments_table), qualified(backup)))
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
  open_target()
  ferry.confirm("Shut down the Overlord, MiddleManagers/Indexers, Historicals, Brokers and Routers so segment " ..
    "metadata stops changing (the Coordinator may keep running; it hosts Derby). Are they stopped?")
end, {sharded = true}) -- answered for each shard before it copies (--yes in pods)

ferry.step("copy-segments", "Copy segments to " .. p.target, function(ctx)
  local dst = open_target()
  local manifest = read_manifest()
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

-- Rows to rewrite, each with its new payload; the copy must have verified every file.
local function rewritten_rows()
  local manifest = read_manifest()
  local out = {}
  for _, path in ipairs(plan.order) do
    local g = plan.groups[path]
    local done = manifest[g.key]
    if not (done and done.src == g.path) and not ferry.dry_run() then
      if p.skip_missing and not ferry.fs.stat(g.src) then goto continue end
      ferry.fail("conflict", ("segment %s: %s was not copied and verified; the metadata was not changed"):format(
        g.rows[1].id, g.key), {hint = "run again with --from-step copy-segments"})
    end
    for _, row in ipairs(g.rows) do
      out[#out + 1] = {row = row, new = druid.rewrite(row.payload, g.spec), key = g.key}
    end
    ::continue::
  end
  return out
end

local function csv_value(cells, c)
  local v = cells[c]
  if v == nil or v == ferry.sql.null then return nil end
  if druid.BOOLEAN[c] then return druid.bool(v) and "1" or "0" end
  return v
end

--- Writes rows as an export-metadata (post-#19698) CSV: canonical columns, JSON payloads.
local function write_export_csv(path, rows_, cols)
  ferry.fs.write(path, "")
  local buf = {}
  for _, row in ipairs(rows_) do
    local fields = {}
    for i, c in ipairs(cols) do fields[i] = csv_value(row.cells, c) end
    buf[#buf + 1] = druid.csv_line(fields, #cols)
    if #buf >= 1000 then ferry.fs.write(path, table.concat(buf), {append = true}); buf = {} end
  end
  ferry.fs.write(path, table.concat(buf), {append = true})
end

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
  write_export_csv(dir .. "/" .. segments_table .. ".csv", rows, columns)
  ferry.fs.write(dir .. "/columns.txt", table.concat(columns, ",") .. "\n")
  ferry.state.set("migration_time", migration_time)
  local counters = {backup_rows = #rows, backup_csv = dir .. "/" .. segments_table .. ".csv"}
  if db and p.mode == "direct" then
    local backup = segments_table .. "_backup_" .. stamp
    -- A stopped run of this step may have made the table: empty (stopped before the INSERT,
    -- which is one statement) it is filled now; full it is kept.
    local exists, made = pcall(db.query, db, ("SELECT COUNT(*) AS n FROM %s"):format(qualified(backup)))
    made = exists and made[1] or nil
    local n
    if made and tonumber(made.n) == #rows then
      n = #rows
      ferry.log.info(("the backup table %s was made by an earlier run of this step; kept"):format(backup))
    else
      if not made then
        if db.backend == "mysql" then
          db:exec(("CREATE TABLE %s LIKE %s"):format(qualified(backup), qualified(segments_table)))
        else
          db:exec(("CREATE TABLE %s (LIKE %s INCLUDING ALL)"):format(qualified(backup), qualified(segments_table)))
        end
      end
      n = db:exec(("INSERT INTO %s SELECT * FROM %s"):format(qualified(backup), qualified(segments_table)))
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

local function sql_string(s) return "'" .. s:gsub("'", "''") .. "'" end

local NULLABLE_FROM = 10 -- columns after payload may be NULL

-- The columns of the table the rows are imported into: target_columns, else import_url's table,
-- else unknown (nil). Lower-case name -> true.
local target_cols_cache
local function target_column_set()
  if target_cols_cache ~= nil then return target_cols_cache or nil end
  local list
  if p.target_columns then
    list = p.target_columns
  elseif p.import_url then
    local dst = ferry.sql.connect(p.import_url)
    local qn = dst.backend == "mysql" and ("`" .. segments_table .. "`") or ('"' .. segments_table .. '"')
    local _, cols = dst:query("SELECT * FROM " .. qn .. " WHERE 1 = 0")
    list = cols
  end
  if not list then target_cols_cache = false; return nil end
  local set = {}
  for _, c in ipairs(list) do set[c:lower()] = true end
  target_cols_cache = set
  return set
end

--- The columns of the rewritten CSV and the import SQL: the source's, used_status_last_updated
--- added when the source lacks it (NOT NULL on tables Druid 28+ created) unless the target table
--- is known to predate it; a source column the target lacks is an error (data would be lost).
local function import_columns()
  local cols = {}
  for i, c in ipairs(columns) do cols[i] = c end
  local has = {}
  for _, c in ipairs(cols) do has[c:lower()] = true end
  local target_set = target_column_set()
  if not has.used_status_last_updated and (not target_set or target_set.used_status_last_updated) then
    table.insert(cols, 10, "used_status_last_updated")
  end
  if not target_set then return cols end
  local out, dropped = {}, {}
  for _, c in ipairs(cols) do
    if target_set[c:lower()] then out[#out + 1] = c else dropped[#dropped + 1] = c end
  end
  for _, c in ipairs(dropped) do
    if c:lower() ~= "used_status_last_updated" then
      ferry.fail("conflict", ("the target %s has no column %s, which the exported rows carry"):format(
        segments_table, c), {hint = "run Druid's metadata-init for the same Druid version first, or fix target_columns"})
    end
  end
  return out
end

local function out_cells(row, new_payload)
  local cells = {}
  for k, v in pairs(row.cells) do cells[k] = v end
  if new_payload then cells.payload = new_payload end
  local u = cells.used_status_last_updated
  if u == nil or u == ferry.sql.null or u == "" then cells.used_status_last_updated = migration_time end
  return cells
end

local function write_import_files(all, cols)
  ferry.fs.mkdir(out_dir)
  local csv_path = out_dir .. "/" .. segments_table .. ".csv"
  local derby_path = out_dir .. "/" .. segments_table .. "-derby.csv"
  local plain, derby = {}, {}
  for _, cells in ipairs(all) do
    local a, b = {}, {}
    for i, c in ipairs(cols) do
      local v = cells[c]
      if v == ferry.sql.null then v = nil end
      if c == "payload" then v = ferry.hex.encode(v, {upper = true}) end
      if druid.BOOLEAN[c] then
        a[i] = druid.bool(v) and "1" or "0"
        b[i] = druid.bool(v) and "true" or "false"
      else
        a[i], b[i] = v, v
      end
    end
    plain[#plain + 1] = druid.csv_line(a, #cols)
    derby[#derby + 1] = druid.csv_line(b, #cols)
  end
  ferry.fs.write(csv_path, table.concat(plain))
  ferry.fs.write(derby_path, table.concat(derby))

  -- MySQL / MariaDB: LOAD DATA with ESCAPED BY '' (backslashes are data), hex payloads, NULLIF for
  -- the nullable columns (an unassigned user variable would be dropped).
  local list, sets = {}, {"payload = UNHEX(@payload)"}
  for i, c in ipairs(cols) do
    if c == "payload" then list[i] = "@payload"
    elseif i >= NULLABLE_FROM then
      list[i] = "@" .. c
      sets[#sets + 1] = ("`%s` = NULLIF(@%s, '')"):format(c, c)
    else list[i] = "`" .. c .. "`" end
  end
  local mysql = ("-- Import the rewritten %s into MySQL/MariaDB: mysql --local-infile=1 DB < this file\n" ..
    "-- The table must be empty of these segment ids (a fresh metadata store, or after DELETE FROM %s).\n" ..
    "LOAD DATA LOCAL INFILE %s INTO TABLE `%s` CHARACTER SET utf8mb4 FIELDS TERMINATED BY ',' " ..
    "OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' LINES TERMINATED BY '\\n' (%s) SET %s;\nSHOW WARNINGS;\n"):format(
    segments_table, segments_table, sql_string(csv_path), segments_table, table.concat(list, ","), table.concat(sets, ", "))
  ferry.fs.write(out_dir .. "/import-mysql.sql", mysql)

  -- PostgreSQL: psql's \copy into a text staging table, then decode the hex payload (COPY into
  -- BYTEA would interpret backslashes).
  local staging, select = {}, {}
  for i, c in ipairs(cols) do
    local lc = c:lower()
    staging[i] = ('"%s" text'):format(lc)
    if c == "payload" then select[i] = "decode(payload, 'hex')"
    elseif druid.BOOLEAN[c] then select[i] = ('"%s"::boolean'):format(lc)
    elseif lc == "num_rows" then select[i] = '"num_rows"::bigint'
    else select[i] = ('"%s"'):format(lc) end
  end
  local names = {}
  for i, c in ipairs(cols) do names[i] = '"' .. c:lower() .. '"' end
  local pg_table = pg_schema ~= "public" and (pg_schema .. "." .. segments_table) or segments_table
  local pg = ("-- Import the rewritten %s into PostgreSQL: psql -v ON_ERROR_STOP=1 -d DB -f this file\n" ..
    "BEGIN;\nCREATE TEMP TABLE ferry_segments_import (%s) ON COMMIT DROP;\n" ..
    "\\copy ferry_segments_import FROM %s WITH (FORMAT csv)\n" ..
    "INSERT INTO %s (%s) SELECT %s FROM ferry_segments_import;\nCOMMIT;\n"):format(
    segments_table, table.concat(staging, ", "), sql_string(csv_path), pg_table,
    table.concat(names, ", "), table.concat(select, ", "))
  ferry.fs.write(out_dir .. "/import-postgresql.sql", pg)

  -- Derby: SYSCS_IMPORT_DATA with upper-case names except the quoted lower-case "end"; BLOBs as hex.
  local dcols = {}
  for i, c in ipairs(cols) do dcols[i] = c == "end" and "end" or c:upper() end
  local derby_sql = ("-- Import into Derby (Coordinator stopped; ij or the Derby network client):\n" ..
    "CALL SYSCS_UTIL.SYSCS_IMPORT_DATA (null, '%s', '%s', null, %s, ',', '\"', 'UTF-8', 0);\n"):format(
    segments_table:upper(), table.concat(dcols, ","), sql_string(derby_path))
  ferry.fs.write(out_dir .. "/import-derby.sql", derby_sql)
  return csv_path
end

ferry.step("rewrite-load-specs", "Rewrite the load specs", function()
  ferry.state.set("backup_stamp_pending", nil) -- export-metadata is done (see there)
  local todo = rewritten_rows()
  if p.mode == "direct" then
    if #todo == 0 then
      ferry.log.info("no load spec to rewrite")
      return {rewritten = 0}
    end
    local progress = ferry.log.progress{title = "rewrite load specs", total = #todo}
    db:transaction(function(tx)
      local sql = ("UPDATE %s SET payload = ? WHERE id = ? AND payload = ?"):format(qualified(segments_table))
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
  for i, row in ipairs(rows) do all[i] = out_cells(row, new_payload[row.id]) end
  local cols = import_columns()
  local has_usl = false
  for _, c in ipairs(cols) do if c:lower() == "used_status_last_updated" then has_usl = true end end
  if not has_usl then
    ferry.log.info("the target " .. segments_table .. " predates used_status_last_updated (Druid < 28): the import " ..
      "files leave it out")
  elseif not target_column_set() then
    local src_has = false
    for _, c in ipairs(columns) do if c:lower() == "used_status_last_updated" then src_has = true end end
    if not src_has then
      ferry.log.warn("the import files carry used_status_last_updated (NOT NULL on tables Druid 28+ created); for an " ..
        "older target table give -p target_columns=... (or import_url) so they leave it out")
    end
  end
  local csv_path = write_import_files(all, cols)
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
  for _, c in ipairs(import_columns()) do
    if have[c:lower()] then cols[#cols + 1] = c else dropped[#dropped + 1] = c end
  end
  for _, c in ipairs(dropped) do
    if c ~= "used_status_last_updated" then
      ferry.fail("conflict", ("%s in %s has no column %s, which the exported rows carry"):format(
        segments_table, dst.url, c), {hint = "run Druid's metadata-init for the same Druid version first"})
    end
  end
  local csv = ferry.csv.decode(ferry.fs.read(out_dir .. "/" .. segments_table .. ".csv"), {header = false})
  local file_cols = import_columns()
  local existing = {}
  for _, r in ipairs(dst:query("SELECT id, payload FROM " .. qi(segments_table))) do existing[r.id] = r.payload end
  local inserts, same = {}, 0
  for _, rec in ipairs(csv) do
    local vals = {}
    for i, c in ipairs(file_cols) do
      local v = rec[i]
      if v == "" and i >= NULLABLE_FROM then v = ferry.sql.null end
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
  local dst = open_target()
  local manifest = read_manifest()
  local keys, n_rows = {}, 0
  local source_rows
  if p.mode == "direct" then
    source_rows = read_db_rows()
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
