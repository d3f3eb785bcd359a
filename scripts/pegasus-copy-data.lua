-- Copy a Pegasus table to another cluster with the shell's copy_data, checked and watched.
--
-- The vendor procedure "Shell Tool Command Migration" (create the target table, add the target
-- cluster to the shell's config, run copy_data, monitor it) as a runbook. ferry checks the target
-- table exists and is healthy, checks [pegasus.clusters] of the shell's config.ini, maps parameters
-- to copy_data's short flags (its long options --scan_option_batch_size and --use_multi_set do not
-- parse), refuses -u when the shell's THREAD_POOL_DEFAULT worker_count cannot carry the source's
-- partitions, judges the result from the output (the shell always exits 0), relays the
-- once-a-second progress, offers a re-run with no_overwrite on failure, and counts both tables.
-- See docs/procedures/pegasus.md.

local pegasus = require "ferry.pegasus"

local p = ferry.params{
  {name = "shell", type = "string", required = true,
   doc = "the Pegasus shell command for the source cluster, run by sh: `/opt/pegasus/pegasus_shell config.ini ClusterA` or `./run.sh shell -n ClusterA`"},
  {name = "source_cluster", type = "string", required = true, doc = "the source cluster's name"},
  {name = "source_table", type = "string", required = true, doc = "the table to copy (TableA)"},
  {name = "target_cluster", type = "string", required = true,
   doc = "the target cluster's name, a key of [pegasus.clusters] in the shell's config.ini (copy_data -c)"},
  {name = "target_table", type = "string", doc = "the table on the target cluster (copy_data -a); default: source_table"},
  {name = "target_shell", type = "string",
   doc = "a shell command for the target cluster, for the final row count (default: `shell` with its source_cluster argument replaced by target_cluster)"},
  {name = "shell_config", type = "path", doc = "the shell's config.ini (default: read from the shell command)"},
  {name = "shell_cwd", type = "path", doc = "the folder the shell runs in (it writes .shell-history there); default: the current folder"},
  {name = "source_meta", type = "string", doc = "source meta servers host:port,... (default: the shell's banner)"},
  {name = "pegasus_version", type = "string",
   doc = "the Pegasus version (2.3 .. 2.6) when the shell's banner does not tell it, or to override it"},
  {name = "target_meta", type = "string", doc = "target meta servers host:port,... (default: [pegasus.clusters] of the config)"},
  {name = "timeout_ms", type = "integer", default = 10000, doc = "copy_data -t: timeout of each read and write (the doc's 10000)"},
  {name = "partition", type = "integer", doc = "copy_data -p: copy only this source partition"},
  {name = "max_batch_count", type = "integer", doc = "copy_data -b: operations in flight per partition (shell default 500)"},
  {name = "hash_key_filter_type", type = "string", choices = {"anywhere", "prefix", "postfix"}, doc = "copy_data -h"},
  {name = "hash_key_filter_pattern", type = "string", doc = "copy_data -x"},
  {name = "sort_key_filter_type", type = "string", choices = {"anywhere", "prefix", "postfix", "exact"}, doc = "copy_data -s"},
  {name = "sort_key_filter_pattern", type = "string", doc = "copy_data -y"},
  {name = "value_filter_type", type = "string", choices = {"anywhere", "prefix", "postfix", "exact"},
   doc = "copy_data -v (applied in the shell: every row is still read)"},
  {name = "value_filter_pattern", type = "string", doc = "copy_data -z"},
  {name = "max_multi_set_concurrency", type = "integer", doc = "copy_data -m (with use_multi_set; shell default 20)"},
  {name = "scan_batch_size", type = "integer", doc = "copy_data -o: rows per scan RPC (default 100)"},
  {name = "no_ttl", type = "boolean", default = false, doc = "copy_data -e: copied rows get no TTL"},
  {name = "no_overwrite", type = "boolean", default = false,
   doc = "copy_data -n: keep rows the target already has (check_and_set; refused by a duplication master)"},
  {name = "no_value", type = "boolean", default = false, doc = "copy_data -i: copy keys only, with EMPTY values"},
  {name = "geo_data", type = "boolean", default = false, doc = "copy_data -g: write through the geo client (TABLE and TABLE_geo)"},
  {name = "use_multi_set", type = "boolean", default = false,
   doc = "copy_data -u: one multi_set per hash key (faster; TTLs become approximate; not with no_overwrite)"},
  {name = "reruns", type = "integer", default = 2,
   doc = "after a failed copy_data, offer this many re-runs (with no_overwrite unless use_multi_set)"},
  {name = "copy_timeout", type = "duration", default = "72h", doc = "give up on one copy_data run after this long"},
}

local source, target_table = p.source_table, p.target_table or p.source_table
if p.use_multi_set and p.no_overwrite then
  ferry.fail("usage", "use_multi_set and no_overwrite exclude each other (copy_data: \"copy with multi_set not support no_overwrite\")")
end
if p.value_filter_type and p.no_value then
  ferry.fail("usage", "a value filter cannot be combined with no_value (copy_data reads no values then)")
end
if (p.hash_key_filter_type == nil) ~= (p.hash_key_filter_pattern == nil)
  or (p.sort_key_filter_type == nil) ~= (p.sort_key_filter_pattern == nil)
  or (p.value_filter_type == nil) ~= (p.value_filter_pattern == nil) then
  ferry.fail("usage", "each filter needs both its _type and its _pattern")
end
if p.max_batch_count and p.max_batch_count <= 1 then ferry.fail("usage", "max_batch_count must be greater than 1") end
if p.timeout_ms <= 0 then ferry.fail("usage", "timeout_ms must be positive") end
if p.max_multi_set_concurrency and p.max_multi_set_concurrency <= 0 then
  ferry.fail("usage", "max_multi_set_concurrency must be positive")
end
if p.source_cluster == p.target_cluster and source == target_table then
  ferry.fail("usage", "source and target are the same table (copy_data refuses it too)")
end

local cwd = p.shell_cwd
local function shell(cmd, commands, opts)
  opts = opts or {}
  opts.cwd = opts.cwd or cwd
  return pegasus.shell(cmd, commands, opts)
end

-- The shell's banner tells its version, cluster and meta servers; cheap, so every run reads it.
local banner, version = pegasus.probe(p.shell, p.source_cluster, {cwd = cwd, forced = p.pegasus_version})
if not pegasus.copy_data_has_multi_set(version) and (p.use_multi_set or p.scan_batch_size or p.max_multi_set_concurrency) then
  ferry.fail("usage", ("Pegasus %s's copy_data has no -u, -o or -m (they came in 2.4)"):format(version and version.text or "?"))
end

local site = pegasus.locate({shell = p.shell, shell_config = p.shell_config, source_cluster = p.source_cluster,
  target_cluster = p.target_cluster, source_meta = p.source_meta, target_meta = p.target_meta, target_shell = p.target_shell}, banner, cwd)
local config_path, config, clusters = site.config_path, site.config, site.clusters
local source_meta, target_meta, target_shell = site.source_meta, site.target_meta, site.target_shell

ferry.step("create-target-table", "Create the table on the target cluster (ferry checks it exists)", function()
  if not source_meta or source_meta == "" then
    ferry.fail("usage", "cannot tell the source cluster's meta servers", {hint = "give -p source_meta=host:port,..."})
  end
  if not target_meta then
    ferry.fail("invalid_input", ("%s is not in [pegasus.clusters] of %s"):format(p.target_cluster, tostring(config_path)),
      {hint = ("add `%s = <meta servers of %s>` under [pegasus.clusters] in %s (copy_data -c needs it), or give -p target_meta=..."):format(
        p.target_cluster, p.target_cluster, tostring(config_path))})
  end
  local src = pegasus.app_info(source_meta, source)
  if not src then
    ferry.fail("not_found", ("the source table %s does not exist on %s (%s)"):format(source, p.source_cluster, source_meta))
  end
  local dst = pegasus.app_info(target_meta, target_table)
  if not dst then
    ferry.fail("not_found", ("the target table %s does not exist on %s (%s); copy_data does not create it"):format(
      target_table, p.target_cluster, target_meta),
      {hint = ("create it in a shell on %s: create %s -p %d (the partition count may differ), then run the same command again"):format(
        p.target_cluster, target_table, src.partition_count)})
  end
  if not dst.partition_count or dst.partition_count < 1 then
    ferry.fail("invalid_input", ("the target table %s reports partition_count %s"):format(target_table, tostring(dst.partition_count)))
  end
  if dst.write_unhealthy and dst.write_unhealthy > 0 then
    ferry.fail("unavailable", ("the target table %s has %d write-unhealthy partition(s); copy_data would fail on them"):format(
      target_table, dst.write_unhealthy), {hint = "wait until the table is healthy (shell: app " .. target_table .. " -d)"})
  end
  if p.geo_data and not pegasus.app_info(target_meta, target_table .. "_geo") then
    ferry.fail("not_found", ("geo_data writes through the geo client into %s and %s_geo; %s_geo does not exist on %s"):format(
      target_table, target_table, target_table, p.target_cluster), {hint = "create " .. target_table .. "_geo too"})
  end
  if dst.partition_count ~= src.partition_count then
    ferry.log.warn(("%s has %d partitions, %s has %d; copy_data allows it (rows are re-hashed), but is it what you want?"):format(
      source, src.partition_count, target_table, dst.partition_count))
  end
  ferry.state.set("source_partitions", src.partition_count)
  return {source_partitions = src.partition_count, target_partitions = dst.partition_count}
end)

ferry.step("shell-config", "Add the target cluster's configuration to the shell config file (ferry checks it)", function()
  if not config then
    ferry.fail("not_found", ("cannot read the shell's config.ini (%s)"):format(tostring(config_path)),
      {hint = "give -p shell_config=PATH"})
  end
  local have = clusters[p.target_cluster]
  if not have then
    ferry.fail("invalid_input", ("%s has no `%s = ...` under [pegasus.clusters]; copy_data -c %s cannot find it"):format(
      config_path, p.target_cluster, p.target_cluster),
      {hint = ("append to %s:\n  [pegasus.clusters]\n  %s = %s"):format(config_path, p.target_cluster,
        p.target_meta or "<meta servers of " .. p.target_cluster .. ">")})
  end
  if p.target_meta then
    local want, got = {}, {}
    for _, a in ipairs(pegasus.addresses(p.target_meta)) do want[a] = true end
    for _, a in ipairs(pegasus.addresses(have)) do got[a] = true end
    local shared = false
    for a in pairs(want) do if got[a] then shared = true end end
    if not shared then
      ferry.fail("conflict", ("%s says %s = %s, but target_meta is %s"):format(config_path, p.target_cluster, have, p.target_meta))
    end
  end
  local counters = {target_metas = have}
  if p.use_multi_set then
    -- copy_data -u runs one task per split on THREAD_POOL_DEFAULT and returns without copying
    -- unless worker_count > split count (one split per partition, one with -p). The shell reads
    -- the key with default 0 (src/shell/commands/data_operations.cpp: v2.4
    -- dsn_config_get_value_int64("threadpool.THREAD_POOL_DEFAULT", "worker_count", 0, ...), v2.5
    -- and master DSN_DEFINE_int32(threadpool.THREAD_POOL_DEFAULT, worker_count, 0, ...)), so a
    -- config without it refuses -u whatever the table; the shipped src/shell/config.ini sets 20.
    local pool = config["threadpool.THREAD_POOL_DEFAULT"] or {}
    local workers = tonumber(pool.worker_count or "0") or 0
    local partitions = p.partition and 1 or ferry.state.get("source_partitions") or 0
    if workers <= partitions then
      local setting = pool.worker_count and ("%d in %s"):format(workers, config_path) or
        ("not set in %s, which the shell reads as 0"):format(config_path)
      ferry.fail("invalid_input", ("use_multi_set needs the shell's [threadpool.THREAD_POOL_DEFAULT] worker_count (%s) " ..
        "to be greater than the source's %d %s"):format(setting, partitions, p.partition and "split (-p)" or "partitions"),
        {hint = ("set worker_count = %d there, or copy without -p use_multi_set=true"):format(partitions + 1)})
    end
    counters.worker_count = workers
  end
  return counters
end)

-- copy_data's flags from the parameters, short forms only [reference §2.1 parser quirk].
local function copy_command(no_overwrite)
  local words = {"copy_data", "-c", pegasus.arg(p.target_cluster), "-a", pegasus.arg(target_table), "-t", p.timeout_ms}
  local function opt(flag, v) if v ~= nil then words[#words + 1] = flag; words[#words + 1] = pegasus.arg(v) end end
  local function flag(f, on) if on then words[#words + 1] = f end end
  opt("-p", p.partition); opt("-b", p.max_batch_count)
  opt("-h", p.hash_key_filter_type); opt("-x", p.hash_key_filter_pattern)
  opt("-s", p.sort_key_filter_type); opt("-y", p.sort_key_filter_pattern)
  opt("-v", p.value_filter_type); opt("-z", p.value_filter_pattern)
  opt("-m", p.max_multi_set_concurrency); opt("-o", p.scan_batch_size)
  flag("-e", p.no_ttl); flag("-n", no_overwrite); flag("-i", p.no_value); flag("-g", p.geo_data); flag("-u", p.use_multi_set)
  return table.concat(words, " ")
end

-- Whether a process runs; an orphan that ended but was not reaped yet (a zombie) does not.
local function alive(pid)
  local script = ('kill -0 %d 2>/dev/null && ! grep -qs "^[0-9]* (.*) Z" /proc/%d/stat'):format(pid, pid)
  return ferry.exec.run{"sh", "-c", script, check = false, read_only = true}.code == 0
end

-- Shows the newest progress line (a line a second while copy_data runs [§2.5]).
local function relayer(progress)
  local shown = -1
  return function(last)
    if last and last.rows ~= shown then
      shown = last.rows
      progress:set(last.rows)
      progress:message(("%d/%d splits, %d rows/s"):format(last.done_splits, last.splits, last.last))
    end
  end
end

-- Follows the copy_data run of a killed ferry, whose shell still writes to `log`, until
-- `finished()` says it ended, relaying its progress lines; returns the parsed output. Its output
-- is not ferry's to read (the pipe went with the killed ferry), so only the file tells.
local function follow(log, finished, progress)
  local seen = -1
  local relay = relayer(progress)
  while true do
    local done = finished()
    if done then
      local text = ferry.fs.exists(log) and ferry.fs.read(log) or ""
      return pegasus.parse_copy(text), text
    end
    -- A long copy writes a line a second for hours: read only the end of the file while it runs
    -- (ferry.fs has no ranged read, so `tail` does it once the file is large).
    local st = ferry.fs.stat(log)
    if st and st.size ~= seen then
      seen = st.size
      local tail = st.size <= 65536 and ferry.fs.read(log) or
        ferry.exec.run{"tail", "-c", "4096", log, read_only = true, check = false}.stdout
      relay(pegasus.parse_copy(tail).last)
    end
    ferry.task.sleep(0.5)
  end
end

-- The first line the copy's sh prints: its pid, for a resumed run to follow it.
local PID_TAG = "ferry_copy_data_pid " -- no pattern magic characters: it is used in patterns

-- Runs copy_data once, reading the shell's output as it comes (ferry.exec.run's on_line) to
-- relay progress and judge the result. The shell's output also goes to `log` through
-- `tee -p -a` (GNU coreutils; -p: a write error on the pipe to ferry does not stop tee, so the
-- file keeps growing): a ferry that is killed leaves the shell copying into the file, and the
-- resumed run follows that with `follow`. The sh's pid (`running`) is checkpointed from its
-- first line.
local function copy_once(ctx, log, command, progress)
  ferry.fs.write(log, "")
  local result, feed = pegasus.copy_reader()
  local relay = relayer(progress)
  local line = ("echo %s$$; %s 2>&1 | tee -p -a %s"):format(PID_TAG, p.shell, pegasus.sh_quote(log))
  local r = ferry.exec.run{"sh", "-c", line, stdin = "use " .. pegasus.arg(source) .. "\n" .. command .. "\n",
    cwd = cwd, check = false, timeout = p.copy_timeout,
    on_line = function(_, l)
      local pid = l:match("^" .. PID_TAG .. "(%d+)$")
      if pid then
        ctx:checkpoint("running", {pid = tonumber(pid), log = log})
        return
      end
      feed(l)
      relay(result.last)
    end}
  -- r.stdout is the last 64 KiB of the output: enough for the tail shown on failure.
  return result, (r.stdout:gsub("^" .. PID_TAG .. "%d+\n", ""))
end

ferry.step("copy-data", "Run copy_data in the shell and monitor it (progress every second)", function(ctx)
  if ferry.dry_run() then
    ferry.log.info(("dry run: would run in %s: use %s; %s"):format(p.shell, source, copy_command(p.no_overwrite)))
    return
  end
  local attempt = ctx:checkpoint("attempt") or 0
  local no_overwrite = ctx:checkpoint("no_overwrite")
  if no_overwrite == nil then no_overwrite = p.no_overwrite end
  local progress = ferry.log.progress{title = "copy_data " .. source .. " -> " .. p.target_cluster .. "." .. target_table}

  -- A run that was killed leaves its shell running (its output also goes to a file): follow it to its end.
  local previous = ctx:checkpoint("running")
  local result, text
  local offered = 0 -- re-runs offered by this invocation
  if previous and alive(previous.pid) then
    ferry.log.warn(("copy_data of the interrupted run is still running (pid %d); following it"):format(previous.pid))
    result, text = follow(previous.log, function() return not alive(previous.pid) end, progress)
  elseif previous and ferry.fs.exists(previous.log) then
    -- It ended after ferry was killed: its output says how.
    local r = pegasus.parse_copy(ferry.fs.read(previous.log))
    if r.done then
      ferry.log.info(("copy_data of the interrupted run finished meanwhile (%d rows)"):format(r.rows))
      result, text = r, ferry.fs.read(previous.log)
    end
  end

  while true do
    if not result then
      attempt = attempt + 1
      ctx:checkpoint("attempt", attempt)
      if attempt > 1 and not previous then
        ferry.log.info(("copy_data attempt %d%s"):format(attempt, no_overwrite and " with -n (no_overwrite)" or ""))
      elseif previous then
        ferry.log.info("an earlier copy_data run did not finish; copying again (plain set overwrites, so this is safe)")
      end
      local log = ("%s/copy_data.%d.log"):format(ferry.state.dir(), attempt)
      local command = copy_command(no_overwrite)
      ferry.log.info(("use %s; %s"):format(source, command))
      result, text = copy_once(ctx, log, command, progress)
    end
    previous = nil
    progress:finish()
    ctx:checkpoint("running", false)

    if result.done then
      local rows = result.rows
      ferry.log.info(("copy_data done: %d rows in %d s (%s)"):format(rows, result.last and result.last.seconds or 0,
        result.last and result.last.seconds > 0 and ("%d rows/s"):format(rows // result.last.seconds) or "-"))
      return {rows = rows, seconds = result.last and result.last.seconds or 0, attempts = attempt,
              no_overwrite = no_overwrite}
    end

    -- The first error names the cause; "error occurred, processing terminated" follows it.
    local why
    for _, e in ipairs(result.errors) do
      if not e:find("processing terminated") then why = why or e end
    end
    why = why or result.errors[1] or ("the shell ended without \"Copy done\":\n" .. pegasus.tail(text, 5))
    local explain = pegasus.explain_copy_error(why)
    ferry.log.error(("copy_data failed after %d rows: %s"):format(result.rows or (result.last and result.last.rows) or 0,
      table.concat(result.errors, " | ")))
    if explain then ferry.log.error(explain) end
    local before_copy = result.rows == nil and result.last == nil
    local can_no_overwrite = not p.use_multi_set
    local hint = ("fix the cause, then run the same command again to re-run copy_data%s"):format(
      can_no_overwrite and " (add -p no_overwrite=true to keep rows the target already has)" or "")
    if before_copy or offered >= p.reruns then
      ferry.fail("exec", ("copy_data %s: %s"):format(before_copy and "refused to start" or "failed", why), {hint = hint})
    end
    ferry.confirm(("copy_data failed: %s%s. Re-run copy_data now%s?"):format(why, explain and (" (" .. explain .. ")") or "",
      can_no_overwrite and " with -n (no_overwrite: rows already copied are kept, not rewritten)" or ""))
    offered = offered + 1
    if can_no_overwrite then
      no_overwrite = true
      ctx:checkpoint("no_overwrite", true)
    end
    result = nil
    progress = ferry.log.progress{title = "copy_data (re-run) " .. source .. " -> " .. p.target_cluster .. "." .. target_table}
  end
end)

ferry.step("count-rows", "Count the rows of both tables", function()
  local cmd = pegasus.count_command(version)
  local function count(shell_cmd, tbl, where)
    local r = shell(shell_cmd, {"use " .. pegasus.arg(tbl), cmd}, {read_only = true})
    if r.dry_run then return nil end
    local n = pegasus.parse_count(r.text)
    if not n then
      ferry.fail("exec", ("%s on %s.%s did not print \"Count done\": %s"):format(cmd, where, tbl,
        r.failures[1] or pegasus.tail(r.text, 3)))
    end
    return n
  end
  local src = count(p.shell, source, p.source_cluster)
  local dst
  if target_shell then
    dst = count(target_shell, target_table, p.target_cluster)
  else
    ferry.log.warn("no shell command for the target cluster (give -p target_shell=...): counting the source only")
  end
  if src and dst then
    local filtered = p.partition or p.hash_key_filter_type or p.sort_key_filter_type or p.value_filter_type
    ferry.log.info(("%s.%s: %d rows; %s.%s: %d rows"):format(p.source_cluster, source, src, p.target_cluster, target_table, dst))
    if dst < src and not filtered then
      ferry.log.warn(("the target has %d row(s) fewer than the source (expired rows are not copied; writes during " ..
        "the copy are not either)"):format(src - dst))
    end
  end
  return {source_rows = src, target_rows = dst}
end)
