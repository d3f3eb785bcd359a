-- Migrate Seafile's commit, fs and block objects to another storage backend (migrate.sh, verified).
--
-- The vendor procedure "Migrate data between different backends" as a runbook: read the current
-- and the temporary seafile.conf, copy every object while Seafile runs, stop Seafile and copy what
-- was added meanwhile, verify both sides, and replace seafile.conf. Backends: fs, s3 (AWS and
-- S3-compatible), oss (through its S3 API). Copies are resumable (kill it, run it again) and skip
-- what the destination already has from one listing, or from OBJECT_LIST_FILE_PATH-style object
-- list files in migrate.py's format. Unlike migrate.py, a run with failed objects exits non-zero.
-- See docs/procedures/seafile-migrate.md.

local seafile = require "ferry.seafile"

local p = ferry.params{
  {name = "conf_dir", type = "path", required = true,
   doc = "Seafile's conf dir holding the current seafile.conf (or the file itself)"},
  {name = "seafile_data", type = "path",
   doc = "the seafile-data dir, root of the default fs backend (default: ../seafile-data beside conf_dir)"},
  {name = "dest_conf_dir", type = "path", required = true,
   doc = "dir holding the temporary seafile.conf that describes the new backend (migrate.sh's argument)"},
  {name = "object_list", type = "path",
   doc = "OBJECT_LIST_FILE_PATH: prefix of the object list files (PATH.commits, PATH.fs, PATH.blocks)"},
  {name = "phase", type = "string", default = "all", choices = {"initial", "final", "all"},
   doc = "initial: copy while Seafile runs; final: confirm Seafile is stopped, copy the rest, verify, replace seafile.conf; all: both"},
  {name = "types", type = "list", default = "commits,fs,blocks", choices = {"commits", "fs", "blocks"},
   doc = "object types to migrate"},
  {name = "repo", type = "string", doc = "migrate only this library (repo id), as migrate-repo.sh does"},
  {name = "concurrency", type = "integer", default = 32, doc = "parallel copies per object type"},
  {name = "bandwidth", type = "size", doc = "limit on bytes per second for all types together (e.g. 50MiB); unlimited by default"},
  {name = "objects_per_second", type = "number", doc = "limit on objects per second for all types together; unlimited by default"},
  {name = "verify", type = "string", default = "size", choices = {"size", "hash"},
   doc = "size: count and size per type on both sides; hash: also SHA-1 of blocks and inflated fs objects against their ids"},
  {name = "sign_region", type = "string", default = "seafobj",
   doc = "region for S3 sections with `host` and for OSS: seafobj (as seafobj signs: AWS_DEFAULT_REGION or us-east-1 " ..
         "for S3 hosts, the endpoint's region for OSS), aws_region (the section's aws_region), or a region name"},
  {name = "fsync", type = "boolean", default = true,
   doc = "filesystem destinations: flush each object and its folder before it counts as copied (as seaf-server does)"},
  {name = "allow_empty", type = "boolean", default = false,
   doc = "accept a source that lists no object at all (otherwise an error: a wrong bucket endpoint lists nothing)"},
}

local function parent(path)
  return (path:gsub("/+$", ""):match("^(.*)/[^/]*$")) or "."
end

local conf_dir = p.conf_dir
local seafile_data = p.seafile_data or (parent(conf_dir:gsub("/seafile%.conf$", "")) .. "/seafile-data")

-- Parsed at the start of every run (cheap) so later steps can open the stores.
local orig, orig_ordered, orig_path = seafile.read_conf(conf_dir)
local dest, dest_ordered, dest_path = seafile.read_conf(p.dest_conf_dir)

local settings = {sign_region = p.sign_region, fsync = p.fsync}

local function plan(dtype)
  return seafile.backend(orig, dtype, seafile_data, "source", orig_path, settings),
         seafile.backend(dest, dtype, seafile_data, "destination", dest_path, settings)
end

local function open(dtype)
  local s, d = plan(dtype)
  return ferry.store.open(s.url, s.opts), ferry.store.open(d.url, d.opts)
end

-- A sharded run (docs/scale-out.md) keeps list files of its own: they grow as objects land.
local shard = ferry.shard.info()
local shard_suffix = shard and shard.index and (".shard-%d-of-%d"):format(shard.index, shard.count) or ""

-- The backend name each section has after replace-conf with `types`.
local function orig_conf_name(dtype)
  local migrated = false
  for _, t in ipairs(p.types) do if t == dtype then migrated = true end end
  local c = migrated and dest or orig
  return (c[seafile.SECTIONS[dtype]] or {}).name or "fs"
end

local function list_file(dtype)
  if not p.object_list then return nil end
  if p.repo then return ("%s_%s.%s%s"):format(p.object_list, p.repo, dtype, shard_suffix) end
  return ("%s.%s%s"):format(p.object_list, dtype, shard_suffix)
end

ferry.step("read-config", "Read the current and the temporary seafile.conf", function()
  if os.getenv("SEAF_SERVER_STORAGE_TYPE") then
    ferry.log.warn("SEAF_SERVER_STORAGE_TYPE is set: Seafile 13 would read its backends from the environment, " ..
      "not seafile.conf; ferry reads the two seafile.conf files")
  end
  seafile.refuse_storage_classes(orig, orig_path)
  seafile.refuse_storage_classes(dest, dest_path)
  local counters = {}
  for _, dtype in ipairs(p.types) do
    if not dest[seafile.SECTIONS[dtype]] then
      ferry.fail("invalid_input", ("the temporary %s has no [%s] section"):format(dest_path, seafile.SECTIONS[dtype]))
    end
    local s, d = plan(dtype)
    -- migrate.py main(): refused when get_name() and get_container_name() are equal.
    if s.container == d.container then
      ferry.fail("invalid_input", ("%s: source and destination are the same storage (%s)"):format(dtype, s.shown))
    end
    ferry.log.info(("%s: %s (%s) -> %s (%s)"):format(dtype, s.name, s.shown, d.name, d.shown))
    open(dtype) -- fails here on a missing bucket, a bad endpoint or rejected credentials
    counters[dtype] = s.name .. " -> " .. d.name
  end
  return counters
end, {sharded = true}) -- every shard checks the stores it copies with

-- Shared by the three types, so the limits hold for the whole migration.
local bandwidth = p.bandwidth and ferry.throttle.new{rate = p.bandwidth}
local object_rate = p.objects_per_second and ferry.throttle.new{rate = p.objects_per_second}

local function migrate(label)
  local reports = {}
  ferry.task.parallel(p.types, {concurrency = #p.types}, function(dtype)
    local src, dst = open(dtype)
    ferry.log.info(("Start to migrate [%s] object"):format(dtype))
    local r = ferry.store.copy(src, dst, {
      prefix = p.repo, map = seafile.valid_key, compare = "size", concurrency = p.concurrency,
      list_cache = list_file(dtype), list_cache_sizes = false, dst_prefix = p.repo,
      title = label .. " " .. dtype, throttle = bandwidth, ops_throttle = object_rate,
    })
    reports[dtype] = r
    for _, e in ipairs(r.errors) do
      ferry.log.error(("[%s] failed to migrate %s: %s"):format(dtype, e.key, e.message))
    end
    ferry.log.info(("Complete migrate [%s] object: %d copied, %d already there, %d failed"):format(
      dtype, r.copied, r.skipped, r.failed))
  end)
  local counters, failed, listed, shown = {}, 0, {}, {}
  for _, dtype in ipairs(p.types) do
    local r = reports[dtype]
    listed[dtype] = r.copied + r.skipped + r.failed + (r.other_shards or 0)
    shown[dtype] = (plan(dtype)).shown
    counters[dtype .. "_copied"] = r.copied
    counters[dtype .. "_skipped"] = r.skipped
    counters[dtype .. "_failed"] = r.failed
    counters[dtype .. "_bytes"] = r.bytes
    failed = failed + r.failed
  end
  seafile.check_source(listed, p.types, p.repo, shown, p.allow_empty)
  if failed > 0 then
    ferry.fail("io", ("%d object(s) failed to migrate (listed above); run the same command again to retry them"):format(failed))
  end
  return counters
end

if p.phase ~= "final" then
  ferry.step("initial-migration", "Run migrate.sh to initially migrate objects (Seafile keeps running)", function()
    return migrate("initial")
  end, {sharded = true})
end

if p.phase ~= "initial" then
  ferry.step("stop-seafile", "Stop Seafile and Seahub before the final migration", function()
    ferry.confirm("Stop Seafile and Seahub now (./seahub.sh stop; ./seafile.sh stop) so no new objects " ..
      "are written during the final migration. Are both stopped?")
  end, {sharded = true}) -- answered for each shard before its final copy (--yes in pods)

  ferry.step("final-migration", "Run final migration (copies what was added meanwhile)", function()
    return migrate("final")
  end, {sharded = true})

  -- Valid objects of a store: key -> size, count, total bytes.
  local function inventory(store)
    local sizes, n, bytes = {}, 0, 0
    for e in store:list(p.repo) do
      if seafile.valid_key(e.key) then
        sizes[e.key] = e.size
        n = n + 1
        bytes = bytes + e.size
      end
    end
    return sizes, n, bytes
  end

  ferry.step("verify", "Verify: count and size per type on both sides" ..
    (p.verify == "hash" and ", and content hashes" or ""), function()
    local counters, problems, listed, shown = {}, {}, {}, {}
    for _, dtype in ipairs(p.types) do
      local src, dst = open(dtype)
      local want, n, bytes = inventory(src)
      local have, dn, dbytes = inventory(dst)
      listed[dtype], shown[dtype] = n, (plan(dtype)).shown
      local missing, wrong = {}, {}
      for k, size in pairs(want) do
        if have[k] == nil then
          missing[#missing + 1] = k
        elseif have[k] ~= size then
          wrong[#wrong + 1] = k
        end
      end
      local bad_hash = {}
      if p.verify == "hash" and not ferry.dry_run() then
        local keys = {}
        for k in pairs(want) do if have[k] then keys[#keys + 1] = k end end
        ferry.task.parallel(keys, {concurrency = p.concurrency}, function(k)
          if not seafile.check_content(dtype, k, dst:get(k)) then bad_hash[#bad_hash + 1] = k end
        end)
      end
      ferry.log.info(("[%s] source %d objects (%d bytes), destination %d objects (%d bytes); missing %d, size differs %d%s"):format(
        dtype, n, bytes, dn, dbytes, #missing, #wrong,
        p.verify == "hash" and (", content differs " .. #bad_hash) or ""))
      counters[dtype .. "_source"] = n
      counters[dtype .. "_destination"] = dn
      for _, list in ipairs({{missing, "missing at the destination"}, {wrong, "with another size at the destination"},
                             {bad_hash, "whose content does not match its id"}}) do
        table.sort(list[1])
        if #list[1] > 0 then
          problems[#problems + 1] = ("%s: %d object(s) %s, e.g. %s"):format(dtype, #list[1], list[2], list[1][1])
        end
      end
      if #missing > 0 and list_file(dtype) and ferry.fs.exists(list_file(dtype)) then
        problems[#problems + 1] = ("%s: the object list %s names objects the destination does not have: it is stale; " ..
          "delete it and run the final migration again (--from-step final-migration)"):format(dtype, list_file(dtype))
      end
    end
    seafile.check_source(listed, p.types, p.repo, shown, p.allow_empty)
    if #problems > 0 and not ferry.dry_run() then
      ferry.fail("conflict", "verification failed:\n  " .. table.concat(problems, "\n  "))
    end
    return counters
  end)

  ferry.step("replace-conf", "Replace the original seafile.conf", function()
    if p.repo then
      -- migrate-repo.py semantics: one library moves, the server's backends stay. Seafile finds a
      -- library in another backend only through storage classes (RepoStorageId).
      ferry.log.warn(("repo=%s: seafile.conf is left as it is (switching it would move every other library's " ..
        "objects out of Seafile's sight). The library's objects are now in the new backend too; to serve it from " ..
        "there, set up storage classes ([storage] enable_storage_classes) and run migrate-repo.sh %s " ..
        "<orig_storage_id> <dest_storage_id>, which records the library's new storage id"):format(p.repo, p.repo))
      return {replaced = false}
    end
    local merged = seafile.merge_conf(orig_ordered, dest_ordered, p.types)
    if #p.types < #seafile.TYPES then
      local names = {}
      for _, dtype in ipairs(seafile.TYPES) do names[#names + 1] = orig_conf_name(dtype) end
      ferry.log.warn(("types=%s: only [%s] replaced; the sections now name %s. seaf-server reads each section, " ..
        "but seafobj (migrate.py, seafevents) takes one storage type for all three " ..
        "(objstore_factory.py SeafileConfig.init_backend_conf), so mixed backends confuse those tools"):format(
          table.concat(p.types, ","), table.concat(p.types, "], ["), table.concat(names, "/")))
    end
    local text = ferry.ini.encode(merged)
    -- The backup's name is kept in the state before anything is written: a run stopped after
    -- the new seafile.conf landed but before this step was recorded parses that new file as
    -- "current" the next time, and must neither save it as the original nor write it again.
    local backup = ferry.state.get("conf_backup")
    if backup and ferry.fs.exists(backup) and ferry.fs.read(orig_path) == text then
      ferry.log.info(("seafile.conf already uses the new backend (an earlier run replaced it); the original is saved " ..
        "as %s"):format(backup))
      return {backup = backup, replaced = true}
    end
    if not backup then
      backup = orig_path .. ".ferry-backup-" .. os.date("!%Y%m%dT%H%M%SZ")
      ferry.state.set("conf_backup", backup)
    end
    ferry.fs.copy(orig_path, backup)
    ferry.fs.write(orig_path, text)
    ferry.log.info(("seafile.conf now uses the new backend for %s; the original is saved as %s. " ..
      "Start Seafile again: ./seafile.sh start; ./seahub.sh start"):format(table.concat(p.types, ", "), backup))
    return {backup = backup, replaced = true}
  end)
end
