-- Apache Druid deep storage facts as code: the druid_segments table, segment payloads, the
-- storage layouts Druid's pushers write, and the loadSpec shapes it reads; the configuration
-- (common.runtime.properties, JDBC) is in lua/ferry/druid_conf.lua, the metadata store in
-- lua/ferry/druid_meta.lua. Every rule here cites ../shared/reference/druid.md (sections in brackets).
local M = {}

local json = ferry.json

require("ferry.druid_conf")(M)
local urlencode = M.urlencode

-- Java's String.split("/"): trailing empty strings are removed.
local function java_split(s)
  local parts = {}
  for part in (s .. "/"):gmatch("([^/]*)/") do parts[#parts + 1] = part end
  while #parts > 0 and parts[#parts] == "" do parts[#parts] = nil end
  return parts
end

local UUID = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"

--- export-metadata's getUniqueIDFromLocalLoadSpec [1.5]: the second-to-last path element when it
--- is a UUID (segments pushed with useUniquePath by realtime tasks), else nil.
function M.unique_id(path)
  local parts = java_split(path)
  local candidate = parts[#parts - 1]
  if candidate and candidate:match(UUID) then return candidate end
  return nil
end

--- ShardSpec.getPartitionNum() as Jackson reads it, the number every pusher puts in the path
--- (DataSegmentPusher.getDefaultStorageDir, apache/druid processing/.../segment/loading/
--- DataSegmentPusher.java). Most shard specs serialise it as "partitionNum" (NumberedShardSpec,
--- LinearShardSpec, HashBasedNumberedShardSpec, DimensionRangeShardSpec, TombstoneShardSpec);
--- NumberedOverwriteShardSpec serialises it as "partitionId" (@JsonProperty("partitionId") on
--- getPartitionNum(), values from PartitionIds.NON_ROOT_GEN_START_PARTITION_ID = 32768);
--- NoneShardSpec has none and answers 0.
function M.partition_num(shard, id)
  if shard == nil or shard == json.null then return 0 end
  if type(shard) ~= "table" then
    ferry.fail("invalid_input", ("segment %s: shardSpec is not an object"):format(id))
  end
  local field = shard.type == "numbered_overwrite" and "partitionId" or "partitionNum"
  local n = shard[field]
  if n == nil or n == json.null then
    if shard.type == nil or shard.type == "none" then return 0 end
    ferry.fail("invalid_input", ("segment %s: shardSpec of type %q has no %s, so the path Druid's pusher " ..
      "wrote cannot be known"):format(id, tostring(shard.type), field))
  end
  local i = math.tointeger(n)
  if not i or i < 0 then
    ferry.fail("invalid_input", ("segment %s: shardSpec %s is %s, not a partition number"):format(id, field, tostring(n)))
  end
  return i
end

--- The fields of a payload that decide its storage path: {dataSource, start, finish, version,
--- partition, load_spec}. Raises invalid_input naming the segment when the payload is not Druid's.
function M.segment(payload, id)
  local ok, seg = pcall(json.decode, payload)
  if not ok or type(seg) ~= "table" then
    ferry.fail("invalid_input", ("segment %s: the payload is not JSON (%s)"):format(id, tostring(seg)),
      {hint = "CSV exported by the classic export-metadata loses backslashes; export again with -x (hex payloads)"})
  end
  local interval = seg.interval
  local start, finish = tostring(interval or ""):match("^([^/]+)/([^/]+)$")
  local partition = M.partition_num(seg.shardSpec, id)
  return {
    dataSource = seg.dataSource, start = start, finish = finish, version = seg.version,
    partition = partition,
    load_spec = type(seg.loadSpec) == "table" and seg.loadSpec or {},
  }
end

--- DataSegmentPusher.getDefaultStorageDir [4]: dataSource/start_end/version/partition[/uuid].
function M.default_dir(seg, uuid)
  local dir = ("%s/%s_%s/%s/%s"):format(seg.dataSource, seg.start, seg.finish, seg.version, seg.partition)
  if uuid then dir = dir .. "/" .. uuid end
  return dir
end

-- Joda basicDateTime: 2016-06-27T02:00:00.000Z -> 20160627T020000.000Z.
local function basic(t)
  local date, time = t:match("^([^T]+)T(.+)$")
  if not date then return (t:gsub("[-:]", "")) end
  return date:gsub("-", "") .. "T" .. time:gsub(":", "")
end

--- AzureDataSegmentPusher.getStorageDir [4]: no colons anywhere.
function M.azure_dir(seg, uuid)
  local dir = ("%s/%s_%s/%s/%s"):format(seg.dataSource, basic(seg.start), basic(seg.finish),
    (seg.version:gsub(":", "_")), seg.partition)
  if uuid then dir = dir .. "/" .. uuid end
  return dir
end

--- Parses the target deep storage URL: {kind, url, bucket, base, shown}.
--- kind is "s3", "google", "azure" or "local"; base is the key prefix inside the bucket.
function M.target(url)
  local function split(rest)
    local bucket, base = rest:match("^([^/]+)/?(.*)$")
    return bucket, (base or ""):gsub("/+$", "")
  end
  local scheme, rest = url:match("^(%a[%w+.-]*)://(.*)$")
  if scheme == "s3" or scheme == "s3a" or scheme == "s3n" then
    local bucket, base = split(rest)
    if not bucket then ferry.fail("usage", "target " .. url .. " names no bucket") end
    return {kind = "s3", url = "s3://" .. bucket .. (base ~= "" and ("/" .. base) or ""), bucket = bucket, base = base}
  elseif scheme == "gs" then
    local bucket, base = split(rest)
    if not bucket then ferry.fail("usage", "target " .. url .. " names no bucket") end
    return {kind = "google", url = url, bucket = bucket, base = base}
  elseif scheme == "az" or scheme == "azure" then
    local container, base = split(rest)
    if not container then ferry.fail("usage", "target " .. url .. " names no container") end
    return {kind = "azure", url = url, bucket = container, base = base}
  elseif scheme == "https" and rest:match("^[^/]+%.blob%.") then
    local path = rest:match("^[^/]+/([^?]*)")
    local container, base = split(path or "")
    if not container then ferry.fail("usage", "target names no container") end
    return {kind = "azure", url = url, bucket = container, base = base}
  elseif scheme == "file" then
    local dir = rest:gsub("/+$", "")
    if dir:sub(1, 1) ~= "/" then ferry.fail("usage", "target " .. url .. " must be file:///absolute/dir") end
    return {kind = "local", url = "file://" .. dir, bucket = nil, base = dir}
  elseif scheme == "hdfs" then
    ferry.fail("usage", "HDFS targets are not supported: ferry has no HDFS client; copy with `hadoop distcp` and " ..
      "use export-metadata -h for the metadata")
  end
  ferry.fail("usage", ("target %q: expected s3://bucket/baseKey, gs://bucket/prefix, az://container/prefix " ..
    "or file:///dir"):format(url))
end

--- What to check when the target cannot be opened: a hint for a missing bucket, refused
--- credentials or an unreachable endpoint, else the store error's own hint (err: kind, hint).
function M.target_hint(target, err)
  local err_kind = err.kind
  -- The store's own hint names Lua options (anonymous, allow_http) a procedure user cannot set.
  if target.kind == "google" and tostring(err.message):find("over plain HTTP", 1, true) then
    return "use an https:// GOOGLE_BASE_URL, or STORAGE_EMULATOR_HOST=host:port for an emulator (ferry then " ..
      "sends no credentials, as Google's client libraries do)"
  end
  if err_kind ~= "not_found" and err_kind ~= "auth" and err_kind ~= "unavailable" and err_kind ~= "timeout" and
     err.hint then
    return err.hint
  end
  local b = target.bucket
  if target.kind == "s3" and tostring(err.message):find("GetBucketAcl", 1, true) then
    return ("Druid's S3 pusher reads the bucket's ACL (GetBucketAcl) to grant the bucket owner full control of " ..
      "each segment and fails the same way without it: allow s3:GetBucketAcl on %s to these credentials, or set " ..
      "druid.storage.disableAcl=true in common.runtime.properties (then neither Druid nor ferry sends an ACL)"):format(b)
  end
  if target.kind == "google" then
    if err_kind == "not_found" then
      return ("create the bucket first (gcloud storage buckets create gs://%s) or fix its name in target; " ..
        "ferry does not create buckets"):format(b)
    elseif err_kind == "auth" then
      return ("ferry reads Google credentials as Druid does (Application Default Credentials): " ..
        "GOOGLE_APPLICATION_CREDENTIALS=<key file>, GOOGLE_SERVICE_ACCOUNT / GOOGLE_SERVICE_ACCOUNT_KEY, or the " ..
        "metadata server; the account needs storage.objects.create, get and list on %s"):format(b)
    end
    return "check the network and the endpoint (GOOGLE_BASE_URL; STORAGE_EMULATOR_HOST points at an emulator), " ..
      "then run the same command again"
  elseif target.kind == "s3" then
    if err_kind == "not_found" then return ("create the bucket %s first or fix its name in target"):format(b) end
    if err_kind == "auth" then return "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or the profile) and AWS_REGION" end
    return "check the network and the endpoint (AWS_ENDPOINT_URL), then run the same command again"
  elseif target.kind == "azure" then
    if err_kind == "not_found" then return ("create the container %s first or fix its name in target"):format(b) end
    if err_kind == "auth" then return "check AZURE_STORAGE_ACCOUNT_NAME / AZURE_STORAGE_ACCOUNT_KEY or the SAS token" end
    return "check the network and the account's endpoint, then run the same command again"
  end
  return "check that " .. tostring(target.base) .. " can be created and written by this user"
end

--- Key of the segment's index.zip in the target store (relative to the target's base).
function M.target_key(target, seg, uuid)
  local dir = target.kind == "azure" and M.azure_dir(seg, uuid) or M.default_dir(seg, uuid)
  return dir .. "/index.zip"
end

local function with_base(base, key)
  if base == nil or base == "" then return key end -- S3Utils.constructSegmentPath skips an empty baseKey
  return base .. "/" .. key
end

--- The new loadSpec JSON text, in the key order Druid's pushers serialise [3.1].
function M.load_spec(target, key, opts)
  opts = opts or {}
  local e = json.encode
  local full = with_base(target.base, key)
  if target.kind == "s3" then
    local spec = '{"type":"s3_zip","bucket":' .. e(target.bucket) .. ',"key":' .. e(full)
    if opts.s3_schema and opts.s3_schema ~= "none" then spec = spec .. ',"S3Schema":' .. e(opts.s3_schema) end
    return spec .. "}"
  elseif target.kind == "google" then
    return '{"type":"google","bucket":' .. e(target.bucket) .. ',"path":' .. e(full) .. "}"
  elseif target.kind == "azure" then
    return '{"type":"azure","containerName":' .. e(target.bucket) .. ',"blobPath":' .. e(full) .. "}"
  end
  return '{"type":"local","path":' .. e(full) .. "}"
end

--- Whether a loadSpec (decoded) points into the target; returns the store-relative key.
function M.in_target(target, spec)
  local t, full = spec.type, nil
  if target.kind == "s3" and t == "s3_zip" and spec.bucket == target.bucket then full = spec.key
  elseif target.kind == "google" and t == "google" and spec.bucket == target.bucket then full = spec.path
  elseif target.kind == "azure" and t == "azure" and spec.containerName == target.bucket then full = spec.blobPath
  elseif target.kind == "local" and t == "local" then full = spec.path
  end
  if type(full) ~= "string" then return nil end
  if target.base == "" then return full end
  local prefix = target.base .. "/"
  if full:sub(1, #prefix) == prefix then return full:sub(#prefix + 1) end
  return nil
end

--- The payload with its loadSpec replaced, every other byte kept.
function M.rewrite(payload, spec_json)
  return json.set_raw(payload, "loadSpec", spec_json)
end

-- The columns of druid_segments in the canonical order of the post-#19698 export [1.4].
M.COLUMNS = {"id", "dataSource", "created_date", "start", "end", "partitioned", "version", "used", "payload",
             "used_status_last_updated", "indexing_state_fingerprint", "upgraded_from_segment_id",
             "schema_fingerprint", "num_rows"}
M.BOOLEAN = {partitioned = true, used = true}

--- Orders a table's actual column names canonically (unknown columns last), keeping their case.
function M.canonical_columns(names)
  local by_lower, out, seen = {}, {}, {}
  for _, n in ipairs(names) do by_lower[n:lower()] = n end
  for _, c in ipairs(M.COLUMNS) do
    local real = by_lower[c:lower()]
    if real then out[#out + 1] = real; seen[real] = true end
  end
  for _, n in ipairs(names) do if not seen[n] then out[#out + 1] = n end end
  return out
end

--- One CSV field as the post-#19698 exporter writes it: NULL empty and unquoted, "" for an empty
--- string, quotes when the text has , " CR LF or leading/trailing whitespace [1.4].
function M.csv_field(v)
  if v == nil or v == ferry.sql.null or v == json.null then return "" end
  v = tostring(v)
  if v == "" then return '""' end
  if v:find('[,"\r\n]') or v:match("^%s") or v:match("%s$") then
    return '"' .. v:gsub('"', '""') .. '"'
  end
  return v
end

--- One CSV line of n fields (fields may hold nil for NULL, so n is needed).
function M.csv_line(fields, n)
  local out = {}
  for i = 1, n do out[i] = M.csv_field(fields[i]) end
  return table.concat(out, ",") .. "\n"
end

--- A boolean cell of the metadata store (MySQL tinyint, PostgreSQL boolean, CSV 1/0/true/false).
function M.bool(v)
  if v == true or v == 1 then return true end
  if v == false or v == 0 then return false end
  local s = tostring(v):lower()
  return s == "1" or s == "true" or s == "t"
end

local function sorted_keys(t)
  local out = {}
  for k in pairs(t) do out[#out + 1] = k end
  table.sort(out)
  return out
end

--- The Coordinator's answers after the restart, checked until they prove the cluster reads the
--- new loadSpecs (or `timeout` passes). expected = {dataSource -> {segment id -> target key}} for
--- the used rewritten rows (the Coordinator knows only used segments).
---  1. `GET /druid/coordinator/v1/loadstatus` (CoordinatorResource.getLoadStatus ->
---     DruidCoordinator.getDatasourceToLoadStatus, apache/druid server/.../server/http/ and
---     server/.../coordinator/): every expected data source listed and at 100%. An empty or
---     partial answer (a Coordinator before its first metadata poll) is not success.
---  2. `GET /druid/coordinator/v1/metadata/datasources/{ds}/segments?full`
---     (MetadataResource.getUsedSegmentsInDataSource; 404 when the Coordinator's snapshot has no
---     used segment of ds): every expected segment listed with its new loadSpec. Historicals
---     that still hold a segment in their local cache (druid.segmentCache.locations) announce it
---     without reading deep storage, so 100% alone proves nothing about the new location.
function M.check_coordinator(o)
  local base = o.url:gsub("/+$", "")
  local load_url = base .. "/druid/coordinator/v1/loadstatus"
  local required = sorted_keys(o.expected)
  local last_status
  -- Each GET is bounded by the wait itself: ferry.http's default (60 s, 3 retries) let a stalled
  -- Coordinator hold one check about 4 minutes past `timeout`. The poll retries failed checks.
  local get_opts = {timeout = math.max(1, math.min(60, tonumber(o.timeout) or 60)), retries = 1}
  ferry.task.poll{
    every = o.every, timeout = o.timeout,
    describe = ("the Coordinator to load %d data source(s) from the new deep storage (%s)"):format(#required, base),
    check = function()
      local status = ferry.http.get(load_url, {expect_status = 200, timeout = get_opts.timeout, retries = get_opts.retries}):json()
      if type(status) ~= "table" then
        ferry.fail("invalid_input", load_url .. " did not answer a JSON object")
      end
      last_status = status
      local pending = {}
      for _, ds in ipairs(required) do
        local pct = status[ds]
        if pct == nil then
          pending[#pending + 1] = ds .. " not listed"
        elseif (tonumber(pct) or 0) < 100 then
          pending[#pending + 1] = ("%s %.1f%%"):format(ds, tonumber(pct) or 0)
        end
      end
      if #pending > 0 then
        local seen = next(status) == nil and " (the Coordinator lists no data source yet)" or ""
        ferry.log.info("load status: " .. table.concat(pending, ", ") .. seen)
        return false, table.concat(pending, ", ") .. seen
      end
      local stale = {}
      for _, ds in ipairs(required) do
        local url = base .. "/druid/coordinator/v1/metadata/datasources/" .. urlencode(ds) .. "/segments?full"
        local r = ferry.http.get(url, {expect_status = {200, 404}, timeout = get_opts.timeout,
          retries = get_opts.retries})
        local listed = {}
        if r.status == 200 then
          local segs = r:json()
          for _, seg in ipairs(type(segs) == "table" and segs or {}) do
            local id = seg.identifier
            if type(id) ~= "string" then id = M.segment_id(M.segment(json.encode(seg), "?")) end
            listed[id] = type(seg.loadSpec) == "table" and seg.loadSpec or {}
          end
        end
        local n_old, n_missing = 0, 0
        for id, key in pairs(o.expected[ds]) do
          local spec = listed[id]
          if spec == nil then n_missing = n_missing + 1
          elseif M.in_target(o.target, spec) ~= key then n_old = n_old + 1 end
        end
        if n_old > 0 then stale[#stale + 1] = ("%s: %d segment(s) with the old loadSpec"):format(ds, n_old) end
        if n_missing > 0 then stale[#stale + 1] = ("%s: %d segment(s) not in its metadata view"):format(ds, n_missing) end
      end
      if #stale > 0 then
        local what = "the Coordinator's metadata view is stale (restart the Coordinator and Overlord, or wait for " ..
          "its next metadata poll): " .. table.concat(stale, "; ")
        ferry.log.info(what)
        return false, what
      end
      return true
    end,
  }
  return #required, last_status
end

--- SegmentId.toString(): dataSource_start_end_version, plus _partitionNum when it is not 0.
function M.segment_id(seg)
  local id = ("%s_%s_%s_%s"):format(seg.dataSource, seg.start, seg.finish, seg.version)
  if seg.partition ~= 0 then id = id .. "_" .. seg.partition end
  return id
end

--- Reads back up to n objects of `keys` (sorted; sizes[key] = bytes) entry by entry as Druid's
--- S3/GCS pullers unzip (java.util.zip.ZipInputStream, CompressionUtils.unzip(InputStream,
--- File)): the largest, then others spread over the list. Returns how many were read.
function M.read_back(store, keys, sizes, n)
  if n <= 0 or #keys == 0 then return 0 end
  local pick, seen = {}, {}
  local largest = keys[1]
  for _, k in ipairs(keys) do if (sizes[k] or 0) > (sizes[largest] or 0) then largest = k end end
  pick[1], seen[largest] = largest, true
  local step = math.max(1, #keys // n)
  for i = 1, #keys, step do
    if #pick >= n then break end
    if not seen[keys[i]] then pick[#pick + 1] = keys[i]; seen[keys[i]] = true end
  end
  for _, k in ipairs(pick) do
    local r = store:check_zip(k)
    ferry.log.info(("read back %s: %d file(s), %d bytes, sizes and CRCs as ZipInputStream checks them"):format(
      k, r.files, r.bytes))
  end
  return #pick
end

--- Now, as Druid writes times: 2026-09-02T19:00:00.000Z.
function M.now()
  return os.date("!%Y-%m-%dT%H:%M:%S.000Z")
end

require("ferry.druid_meta")(M)

return M
