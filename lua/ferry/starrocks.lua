-- StarRocks cross-cluster sync facts as code: the official tool's conf/sync.properties keys and
-- defaults, conf/hosts.properties address mapping, include/exclude lists, SHOW CREATE TABLE text
-- (schema signature, partition clauses, target rewrites), Stream Load answers, progress lines.
-- Sections in brackets cite ../shared/reference/starrocks.md; the manual is
-- ../shared/procedures/starrocks-cluster-sync.md.
-- Configuration (sync.properties, hosts.properties, passwords): lua/ferry/starrocks_conf.lua.
local M = {}
require("ferry.starrocks_conf")(M)
local trim = M.trim

---------------------------------------------------------------------------------------------------
-- Selection [manual: include_data_list takes effect before exclude_data_list]
---------------------------------------------------------------------------------------------------

function M.selector(include, exclude)
  local inc, exc = {}, {}
  for _, x in ipairs(include or {}) do inc[x] = true end
  for _, x in ipairs(exclude or {}) do exc[x] = true end
  local any_include = next(inc) ~= nil
  local sel = {}
  --- Whether any table of db may be selected.
  function sel.db(db)
    if exc[db] then return false end
    if not any_include or inc[db] then return true end
    for x in pairs(inc) do
      if x:sub(1, #db + 1) == db .. "." then return true end
    end
    return false
  end
  function sel.table(db, t)
    if exc[db] or exc[db .. "." .. t] then return false end
    return not any_include or inc[db] or inc[db .. "." .. t] or false
  end
  return sel
end

M.SYSTEM_DBS = {information_schema = true, _statistics_ = true, sys = true, starrocks_monitor = true}
M.STAGE_PREFIX = "_ferry_stage_"

---------------------------------------------------------------------------------------------------
-- SHOW CREATE TABLE text [§2.7]
---------------------------------------------------------------------------------------------------

local function matching_paren(s, open)
  local depth, i, quote = 0, open, nil
  while i <= #s do
    local c = s:sub(i, i)
    if quote then
      if c == "\\" then i = i + 1 elseif c == quote then quote = nil end
    elseif c == '"' or c == "'" or c == "`" then
      quote = c
    elseif c == "(" or c == "[" then -- "[" opens a half-open range [(lo), (hi))
      depth = depth + 1
    elseif c == ")" or c == "]" then
      depth = depth - 1
      if depth == 0 then return i end
    end
    i = i + 1
  end
  return nil
end

--- Where `PARTITION BY RANGE(...)` or `PARTITION BY LIST(...)` (with a partition list) starts.
local function partition_by(ddl)
  -- Automatic partitioning (RANGE(date_trunc(...)) and the like) has no partition list.
  if ddl:find("PARTITION%s+BY") and not ddl:find("PARTITION%s+`?[%w_]+`?%s+VALUES") then return nil end
  return ddl:find("PARTITION%s+BY%s+RANGE%s*%(") or ddl:find("PARTITION%s+BY%s+LIST%s*%(")
end

--- Partition clauses of a range- or list-partitioned table: ordered {name, values} where values
--- is the `VALUES ...` text as SHOW CREATE TABLE prints it.
function M.partitions(ddl)
  local out = {}
  local by = partition_by(ddl)
  if not by then return out end
  local open = ddl:find("%(", ddl:find("%)", by) + 1)
  local close = open and matching_paren(ddl, open)
  if not close then return out end
  local body = ddl:sub(open + 1, close - 1)
  local pos = 1
  while true do
    local s, e, name = body:find("PARTITION%s+`?([%w_]+)`?%s+VALUES%s*", pos)
    if not s then break end
    local vstart = body:find("VALUES", s, true)
    -- The clause ends at the next top-level comma (or the end).
    local i, depth, quote = e + 1, 0, nil
    local stop = #body
    while i <= #body do
      local c = body:sub(i, i)
      if quote then
        if c == quote then quote = nil end
      elseif c == '"' or c == "'" then
        quote = c
      elseif c == "(" or c == "[" then
        depth = depth + 1
      elseif c == ")" or c == "]" then
        depth = depth - 1
      elseif c == "," and depth <= 0 then
        stop = i - 1
        break
      end
      i = i + 1
    end
    out[#out + 1] = {name = name, values = trim(body:sub(vstart, stop))}
    pos = stop + 1
  end
  return out
end

--- The text without its `INDEX name (col) USING BITMAP [COMMENT '...']` clauses (the comment may
--- hold commas and parentheses).
local function without_bitmap_indexes(ddl)
  local quoted = ",%s*INDEX%s+[^,]-USING%s+BITMAP%s+COMMENT%s+"
  return (ddl:gsub(quoted .. "'[^']*'", ""):gsub(quoted .. '"[^"]*"', "")
    :gsub(",%s*INDEX%s+[^,]-USING%s+BITMAP[^,%)]*", ""))
end
M.without_bitmap_indexes = without_bitmap_indexes

--- The part of a CREATE TABLE text that must match on both sides: columns, keys, partitioning
--- scheme (not the partition list), distribution; not the name, PROPERTIES or comments.
function M.schema_signature(ddl, opts)
  local s = ddl:gsub("^%s*CREATE%s+TABLE%s+[^%(]-%(", "(", 1)
  -- Drop the partition list after PARTITION BY RANGE(...) / LIST(...).
  local by = partition_by(s)
  if by then
    local colclose = s:find("%)", by)
    local open = s:find("%(", colclose + 1)
    local close = open and matching_paren(s, open)
    if close then s = s:sub(1, open - 1) .. s:sub(close + 1) end
  end
  local p = s:find("PROPERTIES%s*%(")
  if p then
    local close = matching_paren(s, s:find("%(", p))
    s = s:sub(1, p - 1) .. (close and s:sub(close + 1) or "")
  end
  if not (opts and opts.bitmap) then
    s = without_bitmap_indexes(s)
  end
  s = s:gsub('COMMENT%s+"[^"]*"', ""):gsub("COMMENT%s+'[^']*'", "")
  s = s:gsub("%s+", " "):gsub(" ?([%(%),]) ?", "%1"):gsub("%s*;%s*$", "")
  return trim(s)
end

--- A materialized view's definition without its name and PROPERTIES (target settings change those).
function M.mv_signature(text)
  local s = text:gsub("^%s*CREATE%s+MATERIALIZED%s+VIEW%s+`?[^`%s]+`?", "", 1)
  local p = s:find("PROPERTIES%s*%(")
  if p then
    local close = matching_paren(s, s:find("%(", p))
    s = s:sub(1, p - 1) .. (close and s:sub(close + 1) or "")
  end
  return trim((s:gsub("%s+", " ")))
end

local function set_property(ddl, key, value)
  local pat = '"' .. key:gsub("%p", "%%%0") .. '"%s*=%s*"[^"]*"'
  local repl = ('"%s" = "%s"'):format(key, value)
  -- A function replacement: a string one would read a `%` in the value as a capture reference.
  if ddl:find(pat) then return (ddl:gsub(pat, function() return repl end)) end
  local p = ddl:find("PROPERTIES%s*%(")
  if p then
    local open = ddl:find("%(", p)
    return ddl:sub(1, open) .. "\n" .. repl .. "," .. ddl:sub(open + 1)
  end
  return ddl:gsub("%s*;?%s*$", "") .. "\nPROPERTIES (\n" .. repl .. "\n)"
end
M.set_property = set_property

--- PROPERTIES of a CREATE TABLE text as key -> value.
function M.properties(ddl)
  local out = {}
  local p = ddl:find("PROPERTIES%s*%(")
  if not p then return out end
  local open = ddl:find("%(", p)
  local close = matching_paren(ddl, open)
  for k, v in ddl:sub(open + 1, (close or #ddl + 1) - 1):gmatch('"([^"]+)"%s*=%s*"([^"]*)"') do out[k] = v end
  return out
end

--- The properties ALTER TABLE ... SET must change on the target: source values that differ, not
--- counting the ones the target_cluster_* settings decide. Sorted {key, value} pairs.
function M.property_changes(src_ddl, dst_ddl, cfg)
  local managed = {}
  if cfg.target_cluster_replication_num and cfg.target_cluster_replication_num > 0 then managed.replication_num = true end
  if cfg.target_cluster_use_builtin_storage_volume_only or (cfg.target_cluster_storage_volume or "") ~= "" then
    managed.storage_volume = true
  end
  local pi = cfg.target_cluster_enable_persistent_index
  if pi and pi ~= "" and pi ~= "null" then managed.enable_persistent_index = true end
  local a, b = M.properties(src_ddl), M.properties(dst_ddl)
  local out = {}
  for k, v in pairs(a) do
    if not managed[k] and b[k] ~= v then out[#out + 1] = {k, v} end
  end
  table.sort(out, function(x, y) return x[1] < y[1] end)
  return out
end

--- The CREATE TABLE to run on the target for table db.t: the source text, qualified with the
--- database, with the target_cluster_* settings applied.
function M.target_ddl(ddl, db, t, cfg)
  local out = ddl:gsub("^%s*CREATE%s+TABLE%s+`?[^`%s%(]+`?", ("CREATE TABLE `%s`.`%s`"):format(db, t), 1)
  if cfg.target_cluster_replication_num and cfg.target_cluster_replication_num > 0 then
    out = set_property(out, "replication_num", tostring(cfg.target_cluster_replication_num))
  end
  if cfg.target_cluster_use_builtin_storage_volume_only then
    out = set_property(out, "storage_volume", "builtin_storage_volume")
  elseif cfg.target_cluster_storage_volume and cfg.target_cluster_storage_volume ~= "" then
    out = set_property(out, "storage_volume", cfg.target_cluster_storage_volume)
  end
  local pi = cfg.target_cluster_enable_persistent_index
  if pi and pi ~= "" and pi ~= "null" then
    out = set_property(out, "enable_persistent_index", pi)
  end
  if not cfg.enable_bitmap_index_sync then out = without_bitmap_indexes(out) end
  return out
end

---------------------------------------------------------------------------------------------------
-- Names
---------------------------------------------------------------------------------------------------

function M.quote(name) return "`" .. tostring(name):gsub("`", "``") .. "`" end
function M.qualified(db, t) return M.quote(db) .. "." .. M.quote(t) end

--- Percent-encodes a URL component (user names and passwords inside SQL URLs).
function M.urlencode(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

--- A fresh token for one copy job (stage table and label).
function M.token()
  return ("%08x"):format(math.random(0, 0x7fffffff))
end

--- A Stream Load label: digits, letters and underscores only, at most 128 characters (StarRocks'
--- System limits), one per copy job (its retries reuse it).
function M.label(db, t, p, version, token)
  local base = ("%s_%s_%s"):format(db, t, p):gsub("[^%w_]", "_")
  local tail = ("_v%d_%s"):format(version, token)
  local room = 128 - #"ferry_" - #tail
  return "ferry_" .. base:sub(1, room) .. tail
end

---------------------------------------------------------------------------------------------------
-- Reading a cluster (db: a ferry.sql handle on an FE query port) [§2]
---------------------------------------------------------------------------------------------------

--- Databases, without the system ones.
function M.databases(db)
  local rows, columns = db:query("SHOW DATABASES")
  local out = {}
  for _, r in ipairs(rows) do
    local name = r[columns[1]]
    if not M.SYSTEM_DBS[name] then out[#out + 1] = name end
  end
  return out
end

--- name -> "BASE TABLE" | "VIEW" for a database (nil when it is missing); staging tables left out.
function M.tables_of(db, name)
  local ok, rows, columns = pcall(db.query, db, "SHOW FULL TABLES FROM " .. M.quote(name))
  if not ok then return nil end
  local out = {}
  for _, r in ipairs(rows) do
    local t = r[columns[1]]
    if t:sub(1, #M.STAGE_PREFIX) ~= M.STAGE_PREFIX then out[t] = r[columns[2]] or "BASE TABLE" end
  end
  return out
end

--- Names of the asynchronous materialized views of a database (SHOW MATERIALIZED VIEWS).
function M.materialized_views(db, dbname)
  local ok, rows = pcall(db.query, db, "SHOW MATERIALIZED VIEWS FROM " .. M.quote(dbname))
  local out = {}
  for _, r in ipairs(ok and rows or {}) do
    if r.name then out[r.name] = true end
  end
  return out
end

--- SHOW CREATE MATERIALIZED VIEW text [§2.7].
function M.show_create_mv(db, dbname, name)
  local rows, columns = db:query("SHOW CREATE MATERIALIZED VIEW " .. M.qualified(dbname, name))
  local r = rows[1]
  return r and (r["Create Materialized View"] or r[columns[2]])
end

--- SHOW CREATE TABLE text (or the view's, for a view) [§2.7].
function M.show_create(db, dbname, t)
  local rows, columns = db:query("SHOW CREATE TABLE " .. M.qualified(dbname, t))
  local r = rows[1]
  return r and (r["Create Table"] or r["Create View"] or r[columns[2]])
end

-- SHOW PARTITIONS: M.partitions_of in lua/ferry/starrocks_parts.lua.

--- Bytes of a human-formatted size as SHOW PARTITIONS / SHOW DATA print it ("4KB", "1.088 TB").
function M.size_bytes(text)
  local n, unit = tostring(text or ""):match("^%s*([%d%.]+)%s*(%a*)")
  n = tonumber(n)
  if not n then return nil end
  local mult = {[""] = 1, B = 1, KB = 1024, MB = 1024 ^ 2, GB = 1024 ^ 3, TB = 1024 ^ 4, PB = 1024 ^ 5}
  return mult[unit:upper()] and n * mult[unit:upper()] or nil
end

--- An FE setting's current value, nil when the FE has no such item [§4.1].
function M.frontend_config(db, key)
  local rows = db:query(("ADMIN SHOW FRONTEND CONFIG LIKE '%s'"):format(key))
  for _, r in ipairs(rows) do
    if r.Key == key then return tostring(r.Value) end
  end
  return nil
end

--- SELECT COUNT(*) of a table or one partition (TABLE_ROWS lags: StarRocks#57002).
function M.count_rows(db, dbname, t, part)
  local where = part and (" PARTITION (%s)"):format(M.quote(part)) or ""
  local rows, columns = db:query("SELECT COUNT(*) AS n FROM " .. M.qualified(dbname, t) .. where)
  return math.tointeger(tonumber(rows[1].n or rows[1][columns[1]])) or 0
end

--- The DATETIME columns of a table (ferry.sql gives them as ISO text with a T).
function M.datetime_columns(db, dbname, t)
  local out = {}
  for _, r in ipairs(db:query("DESC " .. M.qualified(dbname, t))) do
    if tostring(r.Type or r.type or ""):lower():match("^datetime") then out[r.Field or r.field] = true end
  end
  return out
end

-- ferry's sync state: per table the source version and partition id last copied, per partition;
-- per pending copy job its staging table and label.
function M.synced_key(dbname, t) return "synced:" .. dbname .. "." .. t end
function M.job_key(dbname, t, part) return "job:" .. dbname .. "." .. t .. "." .. part end
function M.synced(dbname, t) return ferry.state.get(M.synced_key(dbname, t)) or {} end

-- Copying one partition: lua/ferry/starrocks_copy.lua (M.copier, M.load_outcome, M.drop_stage).
-- Partition state (physical partitions, compactions): lua/ferry/starrocks_parts.lua.

---------------------------------------------------------------------------------------------------
-- Progress [manual: View Migration Progress; §1.5]
---------------------------------------------------------------------------------------------------

local function pct(a, b)
  if b == 0 then return 100 end
  return math.floor(a * 10000 / b) / 100
end

--- "Sync job progress: P%" with the manual's counters as fields.
function M.job_line(c)
  local progress = pct(c.finished, c.jobs)
  local fields = {total = c.ddl + c.jobs, ddlPending = c.ddlPending, jobPending = c.jobPending, sent = c.sent,
                  running = c.running, finished = c.finished, failed = c.failed, unknown = c.unknown}
  return ("Sync job progress: %.2f%%"):format(progress), fields
end

--- "Sync table progress: P%" (finishedTableRatio) with the manual's table counters as fields.
function M.table_line(t)
  local finished = pct(t.finished, t.total)
  local fields = {finishedTableRatio = ("%.2f%%"):format(finished),
                  expiredTableRatio = ("%.2f%%"):format(t.total == 0 and 0 or pct(t.expired, t.total)),
                  total_table = t.total, finished_table = t.finished, unfinished_table = t.total - t.finished,
                  expired_table = t.expired}
  return ("Sync table progress: %.2f%%"):format(finished), fields
end

---------------------------------------------------------------------------------------------------
-- The sync's working parts (scripts/starrocks-sync.lua)
---------------------------------------------------------------------------------------------------

--- Checks that both FE hosts are set and replaces each *_cluster_password by its plain text when
--- a *_cluster_password_secret_key is set [manual, Step 2]; conf_path names the file in errors.
function M.check_sides(cfg, conf_path)
  for _, side in ipairs({"source", "target"}) do
    if not cfg[side .. "_fe_host"] or cfg[side .. "_fe_host"] == "" then
      ferry.fail("usage", ("%s: %s_fe_host is empty"):format(conf_path, side),
        {hint = ("set it in sync.properties or pass -p %s_fe_host=HOST"):format(side)})
    end
    local secret_key = cfg[side .. "_cluster_password_secret_key"]
    if secret_key ~= "" then
      local plain, why = M.decrypt_password(cfg[side .. "_cluster_password"], secret_key)
      if not plain then
        ferry.fail("usage", ("%s: %s_cluster_password does not decrypt with %s_cluster_password_secret_key: %s")
          :format(conf_path, side, side, why), {hint = ("it must be SELECT TO_BASE64(AES_ENCRYPT('<password>', " ..
          "'<secret key>')), as the manual says; or give the plain password with -p %s_cluster_password=... and " ..
          "-p %s_cluster_password_secret_key="):format(side, side)})
      end
      cfg[side .. "_cluster_password"] = plain
    end
  end
end

--- The mysql:// URL of one side's FE query port (side: "source" or "target"), mapped through
--- hosts.properties, with the user and password percent-encoded and the ssl-mode/ssl-ca of the
--- *_cluster_ssl_* keys; and the host and port it names.
function M.fe_url(cfg, hosts, side)
  local host, port = M.map_address(hosts, side:upper(), cfg[side .. "_fe_host"], cfg[side .. "_fe_query_port"])
  local url = ("mysql://%s:%s@%s:%d/"):format(M.urlencode(cfg[side .. "_cluster_user"]),
    M.urlencode(cfg[side .. "_cluster_password"]), host, port)
  local tls = {}
  if cfg[side .. "_cluster_ssl_mode"] ~= "" then tls[#tls + 1] = "ssl-mode=" .. M.urlencode(cfg[side .. "_cluster_ssl_mode"]) end
  if cfg[side .. "_cluster_ssl_ca"] ~= "" then tls[#tls + 1] = "ssl-ca=" .. M.urlencode(cfg[side .. "_cluster_ssl_ca"]) end
  if #tls > 0 then url = url .. "?" .. table.concat(tls, "&") end
  return url, host, port
end

--- A ferry.sql pool on one side's FE (data: the pool for data statements), its host and port.
-- jdbc_connect_timeout_ms bounds every connection's opening; jdbc_socket_timeout_ms bounds the
-- metadata and control statements, as the official tool's JDBC socket timeout does. The data
-- statements (the partition SELECT streamed into a Stream Load, INSERT ... SELECT from the
-- staging table) go through a second pool with no statement limit: they run as long as the data
-- takes, which the official tool leaves to the cluster's own replication jobs.
function M.connect(cfg, hosts, conf_path, side, data)
  local url, host, port = M.fe_url(cfg, hosts, side)
  -- 0 (or less) means no limit, as for JDBC's connectTimeout and socketTimeout.
  local function secs(ms) return ms > 0 and ms / 1000 or nil end
  local opts = {pool_size = math.max(cfg.replication_job_batch_size, cfg.meta_job_threads) + 2,
    connect_timeout = secs(cfg.jdbc_connect_timeout_ms)}
  if not data then opts.query_timeout = secs(cfg.jdbc_socket_timeout_ms) end
  local ok, db = pcall(ferry.sql.connect, url, opts)
  if not ok then
    local kind = type(db) == "table" and db.kind == "auth" and "auth" or "unavailable"
    ferry.fail(kind, ("cannot log in to the %s cluster's FE query port %s:%d as %s: %s"):format(side, host, port,
      cfg[side .. "_cluster_user"], type(db) == "table" and db.message or tostring(db)),
      {hint = ("check %s_fe_host, %s_fe_query_port, the user/password and %s_cluster_ssl_mode/_ssl_ca in %s " ..
        "(and hosts.properties)"):format(side, side, side, conf_path)})
  end
  return db, host, port
end

--- Fresh "Sync job progress" counters [manual: View Migration Progress], plus rows and bytes.
function M.new_counters()
  return {ddl = 0, ddlPending = 0, jobs = 0, jobPending = 0, sent = 0, running = 0, finished = 0,
          failed = 0, unknown = 0, rows = 0, bytes = 0}
end

--- Materialized views [manual: Limits]: the definition only (the target refreshes it), created
--- after tables and views; jobs appended to `jobs`. o: src, dst (ferry.sql), select (M.selector), cfg.
function M.mv_jobs(o, dbname, mvs, target_mvs, jobs)
  local src, dst, select_, cfg = o.src, o.dst, o.select, o.cfg
  local names = {}
  for name in pairs(mvs) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    if select_.table(dbname, name) then
      local full = dbname .. "." .. name
      local text = M.show_create_mv(src, dbname, name)
      local create = text:gsub("^%s*CREATE%s+MATERIALIZED%s+VIEW%s+`?[^`%s]+`?",
        "CREATE MATERIALIZED VIEW " .. M.qualified(dbname, name), 1)
      if cfg.target_cluster_replication_num > 0 then
        create = M.set_property(create, "replication_num", tostring(cfg.target_cluster_replication_num))
      end
      if not target_mvs[name] then
        jobs[#jobs + 1] = {sql = create, why = "create materialized view " .. full}
      elseif M.mv_signature(M.show_create_mv(dst, dbname, name)) ~= M.mv_signature(text) then
        if cfg.ddl_job_allow_drop_inconsistent_materialized_view then
          jobs[#jobs + 1] = {sql = "DROP MATERIALIZED VIEW " .. M.qualified(dbname, name),
            why = "drop inconsistent materialized view " .. full}
          jobs[#jobs + 1] = {sql = create, why = "create materialized view " .. full}
        else
          ferry.log.warn(("materialized view %s differs on the target; " ..
            "ddl_job_allow_drop_inconsistent_materialized_view=false leaves it"):format(full))
        end
      end
    end
  end
  if cfg.ddl_job_allow_drop_materialized_view_target_only then
    for name in pairs(target_mvs) do
      if not mvs[name] and select_.table(dbname, name) then
        jobs[#jobs + 1] = {sql = "DROP MATERIALIZED VIEW " .. M.qualified(dbname, name),
          why = ("drop materialized view %s.%s (only on the target)"):format(dbname, name)}
      end
    end
  end
end

--- Drops staging tables no pending job refers to (left by a run killed between its steps).
--- scope: the objects in scope with their .parts; dbs: database name -> true.
function M.sweep_stages(dst, scope, dbs)
  for dbname in pairs(dbs) do
    local ok, rows, columns = pcall(dst.query, dst, "SHOW TABLES FROM " .. M.quote(dbname))
    for _, r in ipairs(ok and rows or {}) do
      local t = r[columns[1]]
      if t:sub(1, #M.STAGE_PREFIX) == M.STAGE_PREFIX then
        local referenced = false
        for _, obj in ipairs(scope) do
          for _, part in ipairs(obj.db == dbname and obj.parts or {}) do
            local rec = ferry.state.get(M.job_key(dbname, obj.name, part))
            if rec and rec.stage == t then referenced = true end
          end
        end
        if not referenced then
          ferry.log.info(("dropping leftover staging table %s.%s"):format(dbname, t))
          M.drop_stage(dst, dbname, t)
        end
      end
    end
  end
end

--- Stops the sync when a target BE's disk is fuller than max_pct (target_cluster_max_disk_used_percent);
--- be_count: the BEs preparation saw (none: not checked).
function M.check_disk(dst, be_count, max_pct)
  if be_count == nil or be_count == 0 then return end
  for _, be in ipairs(dst:query("SHOW BACKENDS")) do
    local used = tonumber(tostring(be.MaxDiskUsedPct or be.UsedPct or ""):match("[%d%.]+"))
    if used and used > max_pct then
      ferry.fail("conflict", ("target BE %s disk usage %.2f%% exceeds target_cluster_max_disk_used_percent=%d; " ..
        "migration stopped"):format(tostring(be.IP), used, max_pct),
        {hint = "free or add disk on the target BEs (or raise the limit), then run the same command again"})
    end
  end
end

--- Partitions above this many bytes are warned about: max_replication_data_size_per_job_in_gb,
--- at most Stream Load's 10 GB.
function M.big_partition_bytes(cfg)
  local big = 10 * 1024 ^ 3
  if cfg.max_replication_data_size_per_job_in_gb > 0 then
    big = math.min(big, cfg.max_replication_data_size_per_job_in_gb * 1024 ^ 3)
  end
  return big
end

--- The items of several lists taken round-robin: the first of each, then the second of each, ...
function M.round_robin(lists)
  local out = {}
  for i = 1, math.huge do
    local any = false
    for _, list in ipairs(lists) do
      if list[i] then out[#out + 1] = list[i]; any = true end
    end
    if not any then break end
  end
  return out
end

--- Compares row counts of every table in scope on both sides (per partition where they differ);
--- strict: a difference fails. Returns {tables_equal, tables_differ}.
function M.verify_counts(src, dst, scope, strict)
  local differ, same = {}, 0
  for _, obj in ipairs(scope) do
    if obj.kind == "table" and obj.state == "ok" then
      local full = obj.db .. "." .. obj.name
      local a = M.count_rows(src, obj.db, obj.name)
      local ok, b = pcall(M.count_rows, dst, obj.db, obj.name)
      if not ok then
        differ[#differ + 1] = ("%s: source %d rows, target unreadable: %s"):format(full, a,
          type(b) == "table" and b.message or tostring(b))
      elseif a == b then
        same = same + 1
      else
        local parts = {}
        for _, part in ipairs(obj.parts or {}) do
          if obj.partitioned then
            local pa, pb = M.count_rows(src, obj.db, obj.name, part), M.count_rows(dst, obj.db, obj.name, part)
            if pa ~= pb then parts[#parts + 1] = ("%s %d/%d"):format(part, pa, pb) end
          end
        end
        differ[#differ + 1] = ("%s: source %d rows, target %d%s"):format(full, a, b,
          #parts > 0 and (" (partitions source/target: " .. table.concat(parts, ", ") .. ")") or "")
      end
    end
  end
  for _, d in ipairs(differ) do
    if strict then ferry.log.error(d) else ferry.log.warn(d) end
  end
  ferry.log.info(("verify: %d tables with equal row counts, %d differ"):format(same, #differ))
  if strict and #differ > 0 then
    ferry.fail("conflict", ("%d table(s) differ after the last sync: %s"):format(#differ, table.concat(differ, "; ")),
      {hint = "make sure nothing writes to the source or the target, then run the same command again with " ..
        "-p recopy=<db.table,...> for the tables listed"})
  end
  return {tables_equal = same, tables_differ = #differ}
end

require("ferry.starrocks_copy")(M)
require("ferry.starrocks_parts")(M)
require("ferry.starrocks_ddl")(M)

return M
