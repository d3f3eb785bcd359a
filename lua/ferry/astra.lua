-- Astra DB Sideloader facts as code: the DevOps API migration endpoints and MigrationStatus,
-- upload credentials per cloud, Cassandra snapshot layout, nodetool output, schema.cql.
-- Sources: ../shared/reference/astra.md (sections in brackets).
local M = {}

M.DEFAULT_API = "https://api.astra.datastax.com"

-- The six statuses the docs name [1.2]; anything else is shown as the API gives it.
M.KNOWN = {Initializing = true, ReceivingFiles = true, ImportInProgress = true, MigrationDone = true,
           CleaningUpFiles = true, Closed = true}

--- A status string that ends the wait for an import: done, closed, or a failure-looking word.
function M.terminal(status)
  if status == "MigrationDone" or status == "Closed" then return true end
  return status:find("Fail") or status:find("Abort") or status:find("Error") or status:find("fail")
end

M.SYSTEM_KEYSPACES = {system = true, system_schema = true, system_auth = true, system_distributed = true,
                      system_traces = true, system_views = true, system_virtual_schema = true,
                      dse_system = true, dse_security = true, dse_perf = true, dse_insights = true,
                      dse_insights_local = true, dse_leases = true, dse_system_local = true, solr_admin = true}

------------------------------------------------------------------------------------------------
-- nodetool
------------------------------------------------------------------------------------------------

--- Splits a command template (`ssh {node} nodetool`) into argv for one node.
function M.command(template, node)
  local argv = {}
  for word in template:gmatch("%S+") do argv[#argv + 1] = (word:gsub("{node}", node)) end
  return argv
end

--- The message of a failed nodetool run, without the Java stack trace it prints after it.
function M.nodetool_error(text)
  local msg = text:gsub("\n%-%- StackTrace %-%-.*$", ""):gsub("%s+$", "")
  return msg
end

--- Parses `nodetool listsnapshots` by the header's column offsets (names and sizes contain
--- spaces) [4.3]: rows of {snapshot, keyspace, table, true_size, size_on_disk, created, expires}.
--- Continuation rows with a blank snapshot name take the previous row's.
function M.parse_listsnapshots(text)
  local rows, header, cols = {}, nil, nil
  local names = {
    {key = "snapshot", pats = {"Snapshot name", "Snapshot Name"}},
    {key = "keyspace", pats = {"Keyspace name", "Keyspace"}},
    {key = "table", pats = {"Column family name", "Column Family"}},
    {key = "true_size", pats = {"True size", "True Size"}},
    {key = "size_on_disk", pats = {"Size on disk", "Size on Disk"}},
    {key = "created", pats = {"Creation time"}},
    {key = "expires", pats = {"Expiration time"}},
    {key = "ephemeral", pats = {"Ephemeral"}},
  }
  local last_snapshot
  for line in (text .. "\n"):gmatch("(.-)\r?\n") do
    if not header and (line:find("^Snapshot name") or line:find("^Snapshot Name")) then
      header, cols = line, {}
      for _, n in ipairs(names) do
        for _, pat in ipairs(n.pats) do
          local at = line:find(pat, 1, true)
          if at then cols[#cols + 1] = {key = n.key, at = at}; break end
        end
      end
      table.sort(cols, function(a, b) return a.at < b.at end)
    elseif header and line:match("%S") and not line:find("^Total ") and not line:find("^There are no snapshots") then
      local row = {}
      for i, c in ipairs(cols) do
        local stop = cols[i + 1] and (cols[i + 1].at - 1) or #line
        row[c.key] = (line:sub(c.at, stop):gsub("^%s+", ""):gsub("%s+$", ""))
      end
      if row.snapshot == "" then row.snapshot = last_snapshot else last_snapshot = row.snapshot end
      rows[#rows + 1] = row
    end
  end
  return rows
end

------------------------------------------------------------------------------------------------
-- schema.cql
------------------------------------------------------------------------------------------------

local function strip_comments(s)
  return (s:gsub("/%*.-%*/", ""):gsub("%-%-[^\n]*", ""):gsub("//[^\n]*", ""))
end

--- The statements of a snapshot's schema.cql, classified: {tables = {stmt...}, indexes = {{name,
--- stmt, sai}}, views = {{name, stmt}}, types = {stmt...}, encrypted = bool}.
function M.parse_schema(text)
  local out = {tables = {}, indexes = {}, views = {}, types = {}, encrypted = false}
  for stmt in (strip_comments(text) .. ";"):gmatch("([^;]+);") do
    local s = stmt:gsub("^%s+", ""):gsub("%s+$", "")
    local upper = s:upper()
    if upper:find("^CREATE TABLE") then
      out.tables[#out.tables + 1] = s .. ";"
      if upper:find("ENCRYPT") then out.encrypted = true end
    elseif upper:find("^CREATE MATERIALIZED VIEW") then
      local name = s:match("[Vv][Ii][Ee][Ww]%s+[Ii][Ff]%s+[Nn][Oo][Tt]%s+[Ee][Xx][Ii][Ss][Tt][Ss]%s+([%w_.\"]+)")
        or s:match("[Vv][Ii][Ee][Ww]%s+([%w_.\"]+)")
      out.views[#out.views + 1] = {name = name, stmt = s .. ";"}
    elseif upper:find("^CREATE CUSTOM INDEX") or upper:find("^CREATE INDEX") then
      local name = s:match("[Ii][Nn][Dd][Ee][Xx]%s+[Ii][Ff]%s+[Nn][Oo][Tt]%s+[Ee][Xx][Ii][Ss][Tt][Ss]%s+([%w_\"]+)")
        or s:match("[Ii][Nn][Dd][Ee][Xx]%s+([%w_\"]+)")
      local sai = upper:find("STORAGEATTACHEDINDEX") ~= nil or upper:find("USING%s+'SAI'") ~= nil
      out.indexes[#out.indexes + 1] = {name = name and name:gsub('"', ""), stmt = s .. ";", sai = sai}
    elseif upper:find("^CREATE TYPE") then
      out.types[#out.types + 1] = s .. ";"
    end
  end
  return out
end

------------------------------------------------------------------------------------------------
-- Snapshot layout [4.1]
------------------------------------------------------------------------------------------------

--- The snapshot dirs named exactly `snapshot` under a data dir: {{keyspace, table_dir, table,
--- path, rel}} where rel is relative to the data dir. `wanted(ks, table)` filters.
function M.snapshot_dirs(data_dir, snapshot, wanted)
  local out = {}
  if not ferry.fs.exists(data_dir) then return out end
  for _, ks in ipairs(ferry.fs.list(data_dir)) do
    local ks_path = data_dir .. "/" .. ks
    local st = ferry.fs.stat(ks_path)
    if st and st.is_dir and not M.SYSTEM_KEYSPACES[ks] then
      for _, tdir in ipairs(ferry.fs.list(ks_path)) do
        local table_name = tdir:match("^(.-)%-%x+$") or tdir
        local snap = ks_path .. "/" .. tdir .. "/snapshots/" .. snapshot
        local s2 = ferry.fs.stat(snap)
        if s2 and s2.is_dir and (not wanted or wanted(ks, table_name)) then
          out[#out + 1] = {keyspace = ks, table = table_name, table_dir = tdir, path = snap,
                           rel = ks .. "/" .. tdir .. "/snapshots/" .. snapshot}
        end
      end
    end
  end
  return out
end

--- Files of one snapshot dir: uploadable files, and the secondary index dirs left out [4.1].
function M.snapshot_files(dir)
  local files, index_dirs = {}, {}
  for _, e in ipairs(ferry.fs.walk(dir.path)) do
    local top = e.rel:match("^([^/]+)")
    if top and top:sub(1, 1) == "." then
      if e.is_dir and not e.rel:find("/") then index_dirs[#index_dirs + 1] = top:sub(2) end
    elseif not e.is_dir then
      files[#files + 1] = {path = e.path, rel = dir.rel .. "/" .. e.rel, size = e.size}
    end
  end
  return files, index_dirs
end

--- `<node>/<rel>` with no double slashes (the docs' rule [5.1]).
function M.key(node, rel)
  local k = (node .. "/" .. rel):gsub("/+", "/"):gsub("^/", "")
  return k
end

------------------------------------------------------------------------------------------------
-- MigrationStatus and credentials [1.1, 5.2]
------------------------------------------------------------------------------------------------

--- ISO-8601 UTC (2024-01-18T19:45:09Z, with optional fraction) -> seconds since the epoch.
function M.epoch(iso)
  if type(iso) ~= "string" then return nil end
  local y, mo, d, h, mi, s = iso:match("^(%d+)%-(%d+)%-(%d+)T(%d+):(%d+):?(%d*)")
  if not y then return nil end
  -- days from civil (Howard Hinnant), no os.time timezone games
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  y = mo <= 2 and y - 1 or y
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local doy = (153 * (mo + (mo > 2 and -3 or 9)) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  local days = era * 146097 + doe - 719468
  return days * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60 + (tonumber(s) or 0)
end

--- Seconds since the epoch -> 2025-03-31T14:30:00Z.
function M.iso(t)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(t))
end

--- What identifies the credentials of a status (to tell new ones from the same ones again).
function M.credential_id(status)
  local keys = status.uploadCredentials and status.uploadCredentials.keys
  if type(keys) ~= "table" then return nil end
  return tostring(keys.accessKeyID or keys.urlSignature or keys.url or keys.file) ..
    "|" .. tostring(status.uploadCredentials.credentialExpiration)
end

--- The store for a ReceivingFiles status: url, opts, cloud, shown. Raises when the status lacks
--- what uploads need.
function M.upload_store(status, opts)
  opts = opts or {}
  local dir = status.uploadBucketDir
  local creds = status.uploadCredentials or {}
  local keys = creds.keys
  if type(dir) ~= "string" or dir == "" or type(keys) ~= "table" then
    ferry.fail("unavailable", "the migration has no upload directory or credentials yet (status " ..
      tostring(status.status) .. ")")
  end
  local base = dir:gsub("/+$", "")
  if creds.name == "sessionToken" or dir:find("^s3://") then
    return {cloud = "aws", url = base, shown = dir, opts = {
      access_key_id = keys.accessKeyID, secret_access_key = keys.secretAccessKey,
      session_token = keys.sessionToken, region = opts.aws_region}}
  elseif creds.name == "TYPE_GOOGLE_CREDENTIALS_FILE" or dir:find("^gs://") then
    local key = keys.file and ferry.base64.decode(keys.file) or nil
    return {cloud = "gcp", url = base, shown = dir, opts = {service_account_key = key}}
  elseif creds.name == "URL signature" or dir:find("^https?://") then
    local sas = keys.urlSignature or (keys.url and keys.url:match("%?(.*)$"))
    if not sas or sas == "" then ferry.fail("invalid_input", "Azure credentials without a SAS (urlSignature)") end
    return {cloud = "azure", url = base .. "?" .. sas, shown = dir, opts = {}}
  end
  ferry.fail("invalid_input", ("unknown upload credentials %q for %s"):format(tostring(creds.name), dir))
end

return M
