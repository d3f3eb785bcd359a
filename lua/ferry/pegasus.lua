-- Apache Pegasus as code: driving the shell and admin-cli without a terminal, reading their
-- outputs, the meta and replica HTTP endpoints, and the differences between versions 2.3 to 2.6.
-- Every rule here cites ../shared/reference/pegasus.md (sections in brackets). Pegasus has no Rust
-- client, so the procedures drive Pegasus' own tools.
local M = {}

local json = ferry.json

---------------------------------------------------------------------------------------------------
-- Versions [Version note, §2.1, §3.6, §5.2, §6]
---------------------------------------------------------------------------------------------------

--- "2.5.0", "2.6.0-SNAPSHOT", "v2.4" -> {major, minor, text}; nil when it has no x.y.
function M.version(text)
  local a, b = tostring(text or ""):match("(%d+)%.(%d+)")
  if not a then return nil end
  return {major = tonumber(a), minor = tonumber(b), text = text}
end

--- Whether version v (a table from M.version or a string) is at least "x.y".
function M.at_least(v, want)
  if type(v) ~= "table" then v = M.version(v) end
  local w = M.version(want)
  if not v then return false end
  return v.major > w.major or (v.major == w.major and v.minor >= w.minor)
end

--- The new metrics framework (/metrics JSON) exists from 2.6 (master); 2.5 and older have
--- perf-counters [Version note, §6].
function M.has_new_metrics(v) return M.at_least(v, "2.6") end

--- The setting that really limits cold-backup upload to HDFS [§3.6]: from 2.4 the block service's
--- hdfs_write_limit_rate_mb_per_sec (FT_MUTABLE, set through /updateConfig on each replica); 2.3
--- has no HDFS throttle, only the nfs rate the vendor doc names, which ferry then sets (as the doc
--- says) with a warning. The doc's nfs.max_send_rate_megabytes[_per_disk] limits replica-to-replica
--- copies (learning), not HDFS.
function M.upload_limit(v)
  if M.at_least(v, "2.4") then
    return {how = "http", key = "hdfs_write_limit_rate_mb_per_sec", default = 200,
            doc_key = "nfs.max_send_rate_megabytes_per_disk"}
  end
  return {how = "remote_command", key = "nfs.max_send_rate_megabytes", doc_key = "nfs.max_send_rate_megabytes"}
end

--- count_data counts precisely only with -c, on every version from 2.0.0 to master: without it
--- (`bool precise = false`) it prints RocksDB's estimate per partition and no "Count done"
--- (src/shell/commands/data_operations.cpp count_data; getopt "cp:b:t:..." since v2.0.0).
function M.count_command(_v)
  return "count_data -c"
end

--- copy_data's -m, -o and -u came after 2.3 [§2.1].
function M.copy_data_has_multi_set(v) return M.at_least(v, "2.4") end

--- add_dup's flags [§5.2]: -a/-r from 2.6, -s (checkpoint) from 2.4, -f (freezed) on 2.3.
function M.add_dup_command(v, app, remote_cluster, opts)
  opts = opts or {}
  local cmd = ("add_dup %s %s"):format(app, remote_cluster)
  if opts.checkpoint then
    if not M.at_least(v, "2.4") then
      ferry.fail("usage", "duplicating the checkpoint (add_dup -s) needs Pegasus 2.4 or later; this is " ..
        tostring(v and v.text), {hint = "create the target table first and use -p checkpoint=false"})
    end
    cmd = cmd .. " -s"
  end
  if opts.remote_app and opts.remote_app ~= app then
    if not M.at_least(v, "2.6") then
      ferry.fail("usage", ("add_dup -a (a remote table name other than the source's) needs Pegasus 2.6; on %s the " ..
        "target table must be named %s"):format(tostring(v and v.text), app))
    end
    cmd = cmd .. " -a " .. opts.remote_app
  end
  return cmd
end

---------------------------------------------------------------------------------------------------
-- Output of the tools [§7.2, §7.3]
---------------------------------------------------------------------------------------------------

--- Removes ANSI escape sequences (colours, bold) that newer commands print [§7.3].
function M.strip_ansi(s)
  s = tostring(s or ""):gsub("\27%[[%d;?]*[%a]", "")
  return (s:gsub("\27%][^\7]*\7", ""))
end

--- The banner the shell prints on start: {version, cluster, config, metas} [§7.3].
function M.banner(text)
  text = M.strip_ansi(text)
  return {
    version = M.version(text:match("Pegasus Shell ([^\n]+)")),
    version_text = text:match("Pegasus Shell ([%w%.%-]+)"),
    config = text:match("The config file is: ([^\n]*)"),
    cluster = text:match("The cluster name is: ([^\n]*)"),
    metas = text:match("The cluster meta list is: ([^\n]*)"),
  }
end

-- Lines that mean a shell command did not do its work (the exit code is always 0) [§7.2].
local FAILURE_PATTERNS = {
  "^ERROR:", "^ERR:", "^Invalid argument%(s%)", "^USAGE:", "invalid subcommand", " failed[,:]",
  " failed with err", "failed, error=", "^Error:", "unrecognized option", "invalid option",
}

--- The lines of a shell or admin-cli output that report a failure, in order.
function M.failures(text)
  local out = {}
  for line in (M.strip_ansi(text) .. "\n"):gmatch("([^\n]*)\n") do
    for _, pat in ipairs(FAILURE_PATTERNS) do
      if line:find(pat) then out[#out + 1] = line; break end
    end
  end
  return out
end

--- Quotes one shell-command argument the way the shell's argument splitter reads it.
function M.arg(s)
  s = tostring(s)
  if s ~= "" and not s:find("[%s\"'\\]") then return s end
  return '"' .. s:gsub("[\"\\]", "\\%0") .. '"'
end

--- Quotes a word for sh.
function M.sh_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

--- Runs the Pegasus shell (`shell_cmd`, a command line run by sh) with `commands` on stdin and
--- returns {text (stdout and stderr as written, ANSI stripped), raw, banner, failures}.
--- opts: timeout, cwd, read_only, log (a file to append the raw output to).
function M.shell(shell_cmd, commands, opts)
  opts = opts or {}
  local input = #commands > 0 and (table.concat(commands, "\n") .. "\n") or "" -- an empty line is an error
  local r = ferry.exec.run{"sh", "-c", "exec " .. shell_cmd .. " 2>&1", stdin = input, timeout = opts.timeout,
                           cwd = opts.cwd, check = false, read_only = opts.read_only}
  if r.dry_run then return {text = "", raw = "", banner = {}, failures = {}, dry_run = true} end
  local text = M.strip_ansi(r.stdout)
  if r.code ~= 0 and not text:find("Pegasus Shell") then
    ferry.fail("exec", ("the Pegasus shell `%s` did not start (exit code %d):\n%s"):format(shell_cmd, r.code,
      M.tail(text, 10)), {hint = "check the shell parameter: it must run pegasus_shell (or ./run.sh shell)"})
  end
  return {text = text, raw = r.stdout, banner = M.banner(text), failures = M.failures(text), code = r.code}
end

--- Starts the shell once with no command and reads its banner: returns (banner, version). The
--- version is `forced` when given (a procedure's pegasus_version), else the banner's, else 2.5 (the
--- latest release) with a warning. Fails when the banner names another cluster than `cluster`.
function M.probe(shell_cmd, cluster, opts)
  opts = opts or {}
  local r = M.shell(shell_cmd, {}, {read_only = true, timeout = 60, cwd = opts.cwd})
  local version = opts.forced and M.version(opts.forced) or r.banner.version
  if opts.forced and not version then
    ferry.fail("usage", ("pegasus_version %q is not a version such as 2.5.0"):format(opts.forced))
  end
  if not version then
    if not r.dry_run then
      ferry.log.warn(("`%s` printed no \"Pegasus Shell <version>\" banner; assuming 2.5 (give -p pegasus_version=...)"):format(
        shell_cmd))
    end
    version = M.version("2.5.0")
  end
  local named = r.banner.cluster
  if named and named ~= "" and named ~= cluster and named ~= "unknown" then
    ferry.fail("usage", ("the shell command connects to cluster %s, not source_cluster %s"):format(named, cluster),
      {hint = ("give a shell command for %s, e.g. pegasus_shell config.ini %s"):format(cluster, cluster)})
  end
  return r.banner, version
end

--- Runs admin-cli once (`admin_cmd -m metas args...`, one-shot mode [§7.4]) and returns
--- {text, failures, code}. args is a list of words.
function M.admin(admin_cmd, metas, args, opts)
  opts = opts or {}
  local words = {}
  for _, a in ipairs(args) do words[#words + 1] = M.sh_quote(a) end
  local line = ("exec %s -m %s %s 2>&1"):format(admin_cmd, M.sh_quote(metas), table.concat(words, " "))
  local r = ferry.exec.run{"sh", "-c", line, timeout = opts.timeout, cwd = opts.cwd, check = false,
                           read_only = opts.read_only}
  if r.dry_run then return {text = "", failures = {}, code = 0, dry_run = true} end
  local text = M.strip_ansi(r.stdout)
  local failures = M.failures(text)
  if r.code ~= 0 and #failures == 0 then failures = {("exit code %d: %s"):format(r.code, M.tail(text, 3))} end
  return {text = text, failures = failures, code = r.code}
end

--- The last n lines of a text.
function M.tail(text, n)
  local lines = {}
  for line in tostring(text):gmatch("[^\n]+") do lines[#lines + 1] = line end
  return table.concat(lines, "\n", math.max(1, #lines - n + 1))
end

---------------------------------------------------------------------------------------------------
-- The shell's config.ini [§7.1]
---------------------------------------------------------------------------------------------------

--- Reads an rDSN-style config.ini leniently: {section = {key = value}} (comments # and ;).
function M.read_config(path)
  local sections, cur = {}, nil
  for raw in (ferry.fs.read(path) .. "\n"):gmatch("([^\n]*)\n") do
    local line = raw:gsub("^%s+", ""):gsub("%s+$", "")
    if line ~= "" and not line:match("^[#;]") then
      local sec = line:match("^%[(.-)%]$")
      if sec then
        cur = sections[sec] or {}
        sections[sec] = cur
      elseif cur then
        local k, v = line:match("^([^=]-)%s*=%s*(.-)$")
        if k then cur[k] = (v:gsub("%s+[#;].*$", "")) end
      end
    end
  end
  return sections
end

--- Where the shell reads its config.ini, from its command line [§7.1]: `run.sh shell -c|--config
--- FILE`, run.sh's template src/shell/config.ini without one, or `pegasus_shell [config.ini]`.
function M.shell_config_path(shell_cmd, cwd)
  local words = {}
  for w in shell_cmd:gmatch("%S+") do words[#words + 1] = (w:gsub("^['\"]", ""):gsub("['\"]$", "")) end
  local function rel(p)
    if p:sub(1, 1) == "/" or not cwd then return p end
    return cwd .. "/" .. p
  end
  for i, w in ipairs(words) do
    if (w == "-c" or w == "--config") and words[i + 1] then return rel(words[i + 1]) end
    local v = w:match("^%-%-config=(.+)$")
    if v then return rel(v) end
  end
  for i, w in ipairs(words) do
    if w:match("run%.sh$") and words[i + 1] == "shell" then
      return rel((w:match("^(.*)/run%.sh$") or ".") .. "/src/shell/config.ini")
    end
    if w:match("pegasus_shell$") then
      local nxt = words[i + 1]
      if nxt and not nxt:match("^%-") then return rel(nxt) end
      return rel("config.ini")
    end
  end
  return nil
end

--- `shell_cmd` with its `from` cluster argument replaced by `to` (`pegasus_shell config.ini A` ->
--- `... B`), or nil when the command names `from` other than once.
function M.shell_for(shell_cmd, from, to)
  if from == to then return shell_cmd end
  local replaced, n = (" " .. shell_cmd .. " "):gsub("(%s)" .. from:gsub("%p", "%%%0") .. "(%s)",
    "%1" .. to:gsub("%%", "%%%%") .. "%2")
  if n == 1 then return replaced:sub(2, -2) end
  return nil
end

--- Where the two clusters are, from a procedure's parameters `p` (shell, shell_config,
--- source_cluster, target_cluster, source_meta, target_meta, target_shell), the shell's config.ini
--- and its banner: {config_path, config (nil when unreadable), clusters ([pegasus.clusters]),
--- source_meta, target_meta, target_shell}. Parameters win over the config, the config over the banner.
function M.locate(p, banner, cwd)
  local target_cluster = p.target_cluster
  local path = p.shell_config or M.shell_config_path(p.shell, cwd) or banner.config
  local config = path and ferry.fs.exists(path) and M.read_config(path) or nil
  local clusters = config and config["pegasus.clusters"] or {}
  local source_meta = p.source_meta or clusters[p.source_cluster] or banner.metas
  local target_meta = p.target_meta or clusters[target_cluster]
  if not target_meta and target_cluster == p.source_cluster then target_meta = source_meta end
  return {config_path = path, config = config, clusters = clusters, source_meta = source_meta, target_meta = target_meta,
          target_shell = p.target_shell or M.shell_for(p.shell, p.source_cluster, target_cluster)}
end

---------------------------------------------------------------------------------------------------
-- Parsers for the outputs the procedures read
---------------------------------------------------------------------------------------------------

--- One copy_data progress line [§2.5] -> {seconds, done_splits, splits, rows, last, error}.
function M.parse_copy_progress(line)
  local s, d, t, rows, last = line:match(
    "processed for (%d+) seconds, %((%d+)/(%d+)%) splits, total (%d+) rows, last second (%d+) rows")
  if not s then return nil end
  return {seconds = tonumber(s), done_splits = tonumber(d), splits = tonumber(t), rows = tonumber(rows),
          last = tonumber(last), error = line:find("error occurred") ~= nil}
end

--- A copy_data output reader fed one line at a time (ferry.exec.run's on_line): returns (r, feed).
--- r is {done (true: "Copy done"), rows, errors (the first 50), last (progress), split_rows,
--- partition_count} [§2.5, §2.6], filled as lines come.
function M.copy_reader()
  local r = {errors = {}, split_rows = {}}
  local function feed(line)
    line = M.strip_ansi(line)
    local p = M.parse_copy_progress(line)
    if p then r.last = p end
    local pc = line:match("open source app scanner succeed, partition_count = (%d+)")
    if pc then r.partition_count = tonumber(pc) end
    local si, sn = line:match("^INFO: split%[(%d+)%]: (%d+) rows")
    if si then r.split_rows[tonumber(si)] = tonumber(sn) end
    local n = line:match("^Copy done, total (%d+) rows")
    if n then r.done, r.rows = true, tonumber(n) end
    n = line:match("^Copy terminated, total (%d+) rows")
    if n then r.done, r.rows = false, tonumber(n) end
    if (line:find("^ERROR:") or line:find("^USAGE:") or line:find("unrecognized option")
      or line:find("invalid option") or line:find("Invalid argument")) and #r.errors < 50 then
      r.errors[#r.errors + 1] = line
    end
  end
  return r, feed
end

--- The whole copy_data output -> the reader's r (see copy_reader).
function M.parse_copy(text)
  local r, feed = M.copy_reader()
  for line in (M.strip_ansi(text) .. "\n"):gmatch("([^\n]*)\n") do feed(line) end
  return r
end

--- What a copy_data error most likely means, and what to do [§2.6, §1.3].
function M.explain_copy_error(line)
  if line:find("ERR_BUSY") or line:find("ERR_CAPACITY_EXCEEDED") then
    return "the target rejected writes (write throttling): raise the target table's write throttling " ..
      "(replica.write_throttling app env) or copy with smaller -p max_batch_count"
  elseif line:find("ERR_TIMEOUT") then
    return "writes timed out (a write stall on the target, or an overloaded cluster): check the target's " ..
      "compaction/write stall, or raise -p timeout_ms"
  elseif line:find("ERR_OPERATION_DISABLED") then
    return "the target refused the write: a duplication master rejects check_and_set (no_overwrite), and a " ..
      "table in bulk-load ingestion rejects every write"
  elseif line:find("test target app failed") then
    return "the target table cannot be reached: does it exist on the target cluster?"
  elseif line:find("same") then
    return "source and target are the same table"
  end
  return nil
end

--- "Count done, total N rows." -> N [§2.6].
function M.parse_count(text)
  local n = M.strip_ansi(text):match("Count done, total (%d+) rows")
  return n and tonumber(n)
end

--- admin-cli backup's "BackupID: <id>" [§3.2].
function M.parse_backup_id(text)
  return M.strip_ansi(text):match("BackupID:%s*(%d+)")
end

--- A tablewriter or table_printer box (| a | b |) -> list of rows keyed by lower-case header.
function M.parse_table(text)
  local header, rows = nil, {}
  for line in (M.strip_ansi(text) .. "\n"):gmatch("([^\n]*)\n") do
    if line:match("^%s*|") then
      local cells = {}
      for cell in line:gmatch("|([^|]*)") do cells[#cells + 1] = cell:match("^%s*(.-)%s*$") end
      if cells[#cells] == "" then cells[#cells] = nil end
      if not header then
        header = {}
        for i, c in ipairs(cells) do header[i] = c:lower():gsub("[%s_]", "") end
      else
        local row = {}
        for i, c in ipairs(cells) do if header[i] then row[header[i]] = c end end
        rows[#rows + 1] = row
      end
    end
  end
  return rows
end

--- The status of one backup in query-backup-status output: "in progress", "completed", "failed",
--- or nil when the meta does not know it (state is in meta memory only [§3.2, §10.8]).
function M.backup_status(text, backup_id)
  for _, row in ipairs(M.parse_table(text)) do
    if row.backupid == tostring(backup_id) then return row.status and row.status:lower(), row end
  end
  return nil
end

--- query_bulk_load_status's [summary] [§4.1] -> {loading, status, err, download, ingestion}.
function M.parse_bulk_load(text)
  text = M.strip_ansi(text)
  local function field(name) return text:match(name .. "%s*:%s*([^\n]-)%s*\n") or text:match(name .. "%s*:%s*(%S+)%s*$") end
  local status = field("app_bulk_load_status")
  if not status then return nil end
  status = status:gsub("^BLS_", "")
  return {loading = field("is_bulk_loading") == "YES", status = status, err = field("bulk_load_err"),
          download = tonumber(field("app_total_download_progress") or ""),
          ingestion = tonumber(field("app_total_ingestion_progress") or "")}
end

--- add_dup's answer [§5.2] -> {dupid, appid} on success, {exists = true, dupid} for ERR_DUP_EXIST, nil.
function M.parse_add_dup(text)
  text = M.strip_ansi(text)
  if text:find("adding duplication succeed") then
    return {dupid = text:match("dupid: (%d+)"), appid = text:match("appid: (%d+)")}
  end
  if text:find("ERR_DUP_EXIST") or text:find("duplication has been exist") then
    return {exists = true, dupid = text:match("dupid: (%d+)")}
  end
  return nil
end

--- query_dup -d's answer -> {appid, dups = {dupid -> entry}} or nil; the JSON is keyed by a
--- sequence number, the dupid is a field (see ferry.pegasus_dup).
function M.parse_query_dup(text) return require("ferry.pegasus_dup").parse_query_dup(text) end

--- How far a 2.6 duplication entry lags (largest last_committed - confirmed over its
--- partition_states), or nil before 2.6 (see ferry.pegasus_dup for the replica servers' view).
function M.dup_lag(entry)
  local d = require("ferry.pegasus_dup").entry_drain(entry)
  return d and d.lag
end

--- remote_command's answer [§7.3]: 2.6 pretty JSON, 2.5 and older "CALL [...] succeed: msg" lines
--- -> {succeed, failed, nodes = {addr -> {ok, message}}}.
function M.parse_remote_command(text)
  text = M.strip_ansi(text)
  local r = {nodes = {}}
  local j = text:match("(%b{})")
  if j and j:find('"succeed_count"') then
    local ok, v = pcall(json.decode, j)
    if ok then
      r.succeed, r.failed = v.succeed_count, v.failed_count
      for addr, d in pairs(v.details or {}) do
        local msg = d.message
        if type(msg) == "table" then msg = msg.error or json.encode(msg) end
        local fine = d.acked and (msg == "ok" or msg == "OK" or msg == "")
        r.nodes[addr] = {ok = fine and true or false, message = tostring(msg)}
        if d.acked and not fine then r.failed, r.succeed = r.failed + 1, r.succeed - 1 end
      end
      return r
    end
  end
  for addr, status, msg in text:gmatch("CALL %[[^%]]*%] %[([^%]]+)%] (%a+): ([^\n]*)") do
    local fine = status == "succeed" and not msg:find("^ERR")
    r.nodes[addr] = {ok = fine, message = msg}
  end
  r.succeed = tonumber(text:match("Succeed count: (%d+)"))
  r.failed = tonumber(text:match("Failed count: (%d+)"))
  for _, n in pairs(r.nodes) do
    if not n.ok and n.message:find("^ERR") then r.failed, r.succeed = (r.failed or 0) + 1, (r.succeed or 1) - 1 end
  end
  return r
end

-- HTTP endpoints, metrics and request rates: lua/ferry/pegasus_http.lua.
require("ferry.pegasus_http")(M)

---------------------------------------------------------------------------------------------------
-- Placeholders in site commands (HDFS removal, offline split, ZooKeeper update)
---------------------------------------------------------------------------------------------------

--- Replaces {name} in a command template with sh-quoted values; unknown names are an error.
function M.fill(template, values, what)
  return (template:gsub("{([%w_]+)}", function(k)
    if values[k] == nil then
      ferry.fail("usage", ("%s: unknown placeholder {%s} in %q"):format(what, k, template))
    end
    return M.sh_quote(values[k])
  end))
end

return M
