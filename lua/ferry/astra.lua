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

-- The units of FileUtils.stringifyFileSize (apache/cassandra src/java/org/apache/cassandra/io/
-- util/FileUtils.java): "<DecimalFormat #.##> <unit>"; KB/MB... as older DSE and Scylla print.
local SIZE_UNITS = {bytes = true, KiB = true, MiB = true, GiB = true, TiB = true, PiB = true,
                    B = true, KB = true, MB = true, GB = true, TB = true}

--- Splits `token` (text of a glued 3.x column) when it starts with one of `names` and goes on:
--- the known name and the rest, else nil.
local function unglue(token, names)
  if not names or names[token] then return nil end
  local best
  for name in pairs(names) do
    if #name < #token and token:sub(1, #name) == name and (not best or #name > #best) then best = name end
  end
  if best then return best, token:sub(#best + 1) end
end

--- Parses `nodetool listsnapshots` [4.3]: rows of {snapshot, keyspace, table, true_size,
--- size_on_disk, created, expires, ephemeral}.
---
--- Layouts (apache/cassandra src/java/org/apache/cassandra/tools/nodetool/ListSnapshots.java):
--- cassandra-3.11 (and DSE 5.1) print every row with printf("%-20s%-29s%-29s%-19s%-19s%n"), so a
--- value as long as its column runs into the next one with no space between; 4.0, 4.1 and DSE
--- 6.8 use TableBuilder (columns padded to the widest cell, one space apart); 4.1 adds Creation
--- time and Expiration time (empty when the snapshot has no TTL), and Ephemeral with -e. So rows
--- are read by words, not offsets: names have no spaces, a size is a number and a unit, times
--- have no spaces. `known` = {snapshots = set, keyspaces = set, tables = set} (optional) takes
--- apart 3.x values that ran together. Continuation rows (blank snapshot name) take the
--- previous row's: the output DataStax documents for DSE 5.1 (docs.datastax.com/en/dse/5.1/
--- managing/tools/nodetool/list-snapshots.html, and its Cassandra 2.1-3.0 pages) has a title-case
--- header ("Snapshot Name  Keyspace   Column Family  True Size   Size on Disk"), a blank line and
--- such rows, although no apache/cassandra ListSnapshots prints them (tests/doubles/nodetool
--- LAYOUTS cites each layout).
function M.parse_listsnapshots(text, known)
  known = known or {}
  local rows, header, has = {}, false, {}
  local last_snapshot
  for line in (text .. "\n"):gmatch("(.-)\r?\n") do
    if not header and (line:find("^Snapshot name") or line:find("^Snapshot Name")) then
      header = true
      has.created = line:find("Creation time", 1, true) ~= nil
      has.expires = line:find("Expiration time", 1, true) ~= nil
      has.ephemeral = line:find("Ephemeral", 1, true) ~= nil
    elseif header and line:match("%S") and not line:find("^Total ") and not line:find("^There are no snapshots") then
      local words = {}
      for w in line:gmatch("%S+") do words[#words + 1] = w end
      local row, i = {}, 1
      local function take(names)
        local w = words[i]
        if not w then return nil end
        local name, rest = unglue(w, names)
        if name then words[i] = rest; return name end
        i = i + 1
        return w
      end
      if line:find("^%s") then
        row.snapshot = last_snapshot
      else
        row.snapshot = take(known.snapshots)
      end
      row.keyspace = take(known.keyspaces)
      row.table = take(known.tables)
      local function size()
        local n, u = words[i], words[i + 1]
        if n and u and tonumber(n) and SIZE_UNITS[u] then
          i = i + 2
          return n .. " " .. u
        end
      end
      row.true_size = size()
      row.size_on_disk = size()
      -- the times: ISO instants; an empty Expiration time leaves no word
      local rest = {}
      for j = i, #words do rest[#rest + 1] = words[j] end
      if has.ephemeral and (rest[#rest] == "true" or rest[#rest] == "false") then
        row.ephemeral = table.remove(rest)
      end
      if has.created then row.created = rest[1] end
      if has.expires then row.expires = rest[2] end
      if row.snapshot and row.keyspace and row.table then
        last_snapshot = row.snapshot
        rows[#rows + 1] = row
      end
    end
  end
  return rows
end

------------------------------------------------------------------------------------------------
-- schema.cql
------------------------------------------------------------------------------------------------

--- The statements of CQL text, comments (--, //, /* */) dropped, strings ('...' with '' inside,
--- $$...$$) and quoted names ("...") kept whole: a `;` or `--` inside a string (a comment
--- option) does not cut a statement.
function M.cql_statements(text)
  local out, buf, i, n = {}, {}, 1, #text
  local function flush()
    local stmt = table.concat(buf):gsub("^%s+", ""):gsub("%s+$", "")
    if stmt ~= "" then out[#out + 1] = stmt end
    buf = {}
  end
  while i <= n do
    local j = text:find("[';\"%$%-/]", i)
    if not j then buf[#buf + 1] = text:sub(i); break end
    buf[#buf + 1] = text:sub(i, j - 1)
    local c, two = text:sub(j, j), text:sub(j, j + 1)
    if c == "'" or c == '"' then
      local k = j + 1
      while k <= n do
        if text:sub(k, k) == c then
          if text:sub(k + 1, k + 1) == c then k = k + 2 else break end
        else
          k = k + 1
        end
      end
      buf[#buf + 1] = text:sub(j, k)
      i = k + 1
    elseif two == "$$" then
      local k = text:find("$$", j + 2, true) or n
      buf[#buf + 1] = text:sub(j, k + 1)
      i = k + 2
    elseif two == "--" or two == "//" then
      i = text:find("\n", j, true) or n + 1
    elseif two == "/*" then
      local k = text:find("*/", j + 2, true)
      i = k and k + 2 or n + 1
    elseif c == ";" then
      flush()
      i = j + 1
    else
      buf[#buf + 1] = c
      i = j + 1
    end
  end
  flush()
  return out
end

--- The end of the string or quoted name opening at `i` (`''` / `""` inside it are kept).
local function quoted_end(s, i)
  local c, k = s:sub(i, i), i + 1
  while k <= #s do
    if s:sub(k, k) == c then
      if s:sub(k + 1, k + 1) ~= c then return k end
      k = k + 2
    else
      k = k + 1
    end
  end
  return #s
end

--- Splits `s` at top-level separators (outside strings, quoted names and ()<>{}[] nesting):
--- `sep` is "," or the word "AND".
local function split_top(s, sep)
  local parts, depth, start, i, n = {}, 0, 1, 1, #s
  while i <= n do
    local c = s:sub(i, i)
    if c == "'" or c == '"' then
      i = quoted_end(s, i)
    elseif c == "(" or c == "<" or c == "{" or c == "[" then
      depth = depth + 1
    elseif c == ")" or c == ">" or c == "}" or c == "]" then
      depth = depth - 1
    elseif depth == 0 and sep == "," and c == "," then
      parts[#parts + 1] = s:sub(start, i - 1)
      start = i + 1
    elseif depth == 0 and sep == "AND" and s:sub(i, i + 2):upper() == "AND"
      and not s:sub(i - 1, i - 1):match("[%w_]") and not s:sub(i + 3, i + 3):match("[%w_]") then
      parts[#parts + 1] = s:sub(start, i - 1)
      start = i + 3
      i = i + 2
    end
    i = i + 1
  end
  parts[#parts + 1] = s:sub(start)
  local out = {}
  for _, p in ipairs(parts) do
    local t = p:gsub("^%s+", ""):gsub("%s+$", "")
    if t ~= "" then out[#out + 1] = t end
  end
  return out
end

--- The position of the `)` closing the `(` at `open` (strings and quoted names skipped).
local function closing(s, open)
  local depth, i = 0, open
  while i <= #s do
    local c = s:sub(i, i)
    if c == "'" or c == '"' then
      i = quoted_end(s, i)
    elseif c == "(" then
      depth = depth + 1
    elseif c == ")" then
      depth = depth - 1
      if depth == 0 then return i end
    end
    i = i + 1
  end
end

local function first_word(s)
  return s:match('^("[^"]*")') or s:match("^([^%s]+)")
end

--- A CREATE TABLE statement as {name, head ("CREATE TABLE IF NOT EXISTS ks.t"), items (column
--- definitions and PRIMARY KEY, in order), options (the WITH clauses)}; nil when not parsable.
local function parse_create_table(stmt)
  local open = stmt:find("(", 1, true)
  local close = open and closing(stmt, open)
  if not close then return nil end
  local head = stmt:sub(1, open - 1):gsub("%s+$", "")
  local name = head:match("([^%s]+)$")
  local items = split_top(stmt:sub(open + 1, close - 1), ",")
  local rest = stmt:sub(close + 1):gsub("^%s+", "")
  local options = {}
  if rest:upper():find("^WITH%s") then options = split_top(rest:sub(5), "AND") end
  return {name = name, head = head, items = items, options = options}
end

--- Applies one `ALTER TABLE t DROP c [USING TIMESTAMP n]` / `DROP (a, b)` / `ADD c type` /
--- `ADD (a type, b type)` to a parsed table. Returns false for other ALTERs.
local function apply_alter(def, action, rest)
  local inner = rest:match("^%((.*)%)")
  local list = inner and split_top(inner, ",") or {rest}
  if action == "DROP" then
    for _, entry in ipairs(list) do
      local col = first_word(entry)
      for i = #def.items, 1, -1 do
        if first_word(def.items[i]) == col then table.remove(def.items, i) end
      end
    end
    return true
  elseif action == "ADD" then
    for _, entry in ipairs(list) do
      local at = #def.items + 1
      if def.items[#def.items] and def.items[#def.items]:upper():find("^PRIMARY%s+KEY") then at = #def.items end
      table.insert(def.items, at, entry)
    end
    return true
  end
  return false
end

--- The CREATE TABLE statement for a parsed table: one column per line, the options but `ID`
--- (an internal option: TableMetadata.appendTableOptions writes it "withInternals").
local function render_table(def)
  local opts = {}
  for _, o in ipairs(def.options) do
    if not o:upper():find("^ID%s*=") then opts[#opts + 1] = o end
  end
  return def.head .. " (\n    " .. table.concat(def.items, ",\n    ") .. "\n)" ..
    (#opts > 0 and (" WITH " .. table.concat(opts, "\n    AND ")) or "") .. ";"
end

--- DSE Transparent Data Encryption is a table's compression class (Encryptor,
--- EncryptingLZ4Compressor, EncryptingDeflateCompressor, EncryptingSnappyCompressor; DSE 5.0:
--- 'sstable_compression'), with cipher_algorithm / secret_key_strength / system_key_file
--- (DataStax docs, "Table encryption options and syntax"). Only the options count: a column may
--- be called encrypted_anything.
local function encrypted(options)
  for _, o in ipairs(options) do
    local key, value = o:match("^([%w_]+)%s*=%s*(.*)$")
    if key and key:lower() == "compression" and
       (value:find("Encrypt") or value:find("'cipher_algorithm'") or value:find("'system_key_file'")) then
      return true
    end
  end
  return false
end

--- The statements of a snapshot's schema.cql (SchemaCQLHelper.reCreateStatementsForSchemaCql,
--- apache/cassandra src/java/org/apache/cassandra/db/SchemaCQLHelper.java: the table's types,
--- its CREATE TABLE with the dropped columns and `WITH ID`, then TableMetadata.appendDropColumns'
--- `ALTER TABLE .. DROP c USING TIMESTAMP t` and, for a column added again, `ALTER TABLE .. ADD
--- c type`, then its indexes; a view's CREATE MATERIALIZED VIEW), classified: {tables = {CREATE
--- TABLE as the table is now, ALTERs applied, ID left out}, names = {ks.table...}, indexes =
--- {{name, stmt, sai}}, views = {{name, stmt}}, types = {stmt...}, encrypted = bool, unparsed =
--- {stmt...}}.
function M.parse_schema(text)
  local out = {tables = {}, names = {}, indexes = {}, views = {}, types = {}, encrypted = false, unparsed = {}}
  local defs, order = {}, {}
  for _, s in ipairs(M.cql_statements(text)) do
    local upper = s:upper()
    if upper:find("^CREATE%s+TABLE") then
      local def = parse_create_table(s)
      if def then
        defs[def.name] = def
        order[#order + 1] = def.name
        if encrypted(def.options) then out.encrypted = true end
      else
        out.unparsed[#out.unparsed + 1] = s .. ";"
      end
    elseif upper:find("^ALTER%s+TABLE") then
      local name, action, rest = s:match("^%S+%s+%S+%s+(%S+)%s+(%a+)%s+(.*)$")
      local def = name and defs[name]
      if not (def and apply_alter(def, action:upper(), rest)) then out.unparsed[#out.unparsed + 1] = s .. ";" end
    elseif upper:find("^CREATE%s+MATERIALIZED%s+VIEW") then
      local name = s:match("[Vv][Ii][Ee][Ww]%s+[Ii][Ff]%s+[Nn][Oo][Tt]%s+[Ee][Xx][Ii][Ss][Tt][Ss]%s+([%w_.\"]+)")
        or s:match("[Vv][Ii][Ee][Ww]%s+([%w_.\"]+)")
      out.views[#out.views + 1] = {name = name, stmt = s .. ";"}
    elseif upper:find("^CREATE%s+CUSTOM%s+INDEX") or upper:find("^CREATE%s+INDEX") then
      local name = s:match("[Ii][Nn][Dd][Ee][Xx]%s+[Ii][Ff]%s+[Nn][Oo][Tt]%s+[Ee][Xx][Ii][Ss][Tt][Ss]%s+([%w_\"]+)")
        or s:match("[Ii][Nn][Dd][Ee][Xx]%s+([%w_\"]+)")
      local sai = upper:find("STORAGEATTACHEDINDEX") ~= nil or upper:find("USING%s+'SAI'") ~= nil
      out.indexes[#out.indexes + 1] = {name = name and name:gsub('"', ""), stmt = s .. ";", sai = sai}
    elseif upper:find("^CREATE%s+TYPE") then
      out.types[#out.types + 1] = s .. ";"
    end
  end
  for _, name in ipairs(order) do
    out.tables[#out.tables + 1] = render_table(defs[name])
    out.names[#out.names + 1] = name
  end
  return out
end

--- The keyspace and table names under data dirs (to read 3.x listsnapshots rows that ran
--- together): {keyspaces = set, tables = set}.
function M.names_on_disk(data_dirs)
  local ks_set, t_set = {}, {}
  for _, dd in ipairs(data_dirs) do
    if ferry.fs.exists(dd) then
      for _, ks in ipairs(ferry.fs.list(dd)) do
        local st = ferry.fs.stat(dd .. "/" .. ks)
        if st and st.is_dir then
          ks_set[ks] = true
          for _, tdir in ipairs(ferry.fs.list(dd .. "/" .. ks)) do
            t_set[tdir:match("^(.-)%-%x+$") or tdir] = true
          end
        end
      end
    end
  end
  return {keyspaces = ks_set, tables = t_set}
end

--- The region of an S3 bucket from HeadBucket's `x-amz-bucket-region` header, which S3 sends
--- whether or not the request is signed or allowed (AWS S3 API reference, HeadBucket), at
--- `endpoint` (default https://s3.amazonaws.com; redirects followed). nil, why when not said.
function M.bucket_region(bucket, endpoint)
  local url = (endpoint or "https://s3.amazonaws.com"):gsub("/+$", "") .. "/" .. bucket
  local ok, r = pcall(ferry.http.request, {method = "HEAD", url = url, retries = 3, timeout = 30})
  if not ok then return nil, tostring(r) end
  local region = r.headers and r.headers["x-amz-bucket-region"]
  if region and region ~= "" then return region end
  return nil, ("HEAD %s answered %d without x-amz-bucket-region"):format(url, r.status)
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
    if type(keys.file) ~= "string" or keys.file == "" then
      ferry.fail("invalid_input", "GCP upload credentials without a key file (uploadCredentials.keys.file)")
    end
    -- keys.file: a base64-encoded service-account key JSON (the docs: `jq -r
    -- '.uploadCredentials.keys.file' | base64 -d > creds.json`), given whole to the GCS store.
    local ok, key = pcall(ferry.base64.decode, keys.file)
    local parsed = ok and select(2, pcall(ferry.json.decode, key))
    if type(parsed) ~= "table" or not parsed.private_key or not parsed.client_email then
      ferry.fail("invalid_input", "GCP upload credentials (uploadCredentials.keys.file) are not a base64 " ..
        "service-account key JSON with private_key and client_email")
    end
    local o = {service_account_key = key}
    if opts.gcs_endpoint then
      o.endpoint = opts.gcs_endpoint
      -- an explicit http:// endpoint (a local gateway or emulator) is the user's choice
      if opts.gcs_endpoint:find("^http://") then o.allow_http = true end
    end
    return {cloud = "gcp", url = base, shown = dir, opts = o}
  elseif creds.name == "URL signature" or dir:find("^https?://") then
    local sas = keys.urlSignature or (keys.url and keys.url:match("%?(.*)$"))
    if not sas or sas == "" then ferry.fail("invalid_input", "Azure credentials without a SAS (urlSignature)") end
    return {cloud = "azure", url = base .. "?" .. sas, shown = dir, opts = {}}
  end
  ferry.fail("invalid_input", ("unknown upload credentials %q for %s"):format(tostring(creds.name), dir))
end

return M
