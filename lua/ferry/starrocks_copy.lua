-- starrocks-sync: copying one partition [reference §3.1; docs/procedures/starrocks-sync.md "How
-- ferry copies data"]. Installed into ferry.starrocks (M) by require("ferry.starrocks_copy")(M).
--
-- A BE refuses a JSON Stream Load whose Content-Length is above streaming_load_max_batch_size_mb
-- (default 100 MB) unless `ignore_json_size: true` is sent ("The size of this batch exceed the max
-- size [..] of json type data", StarRocks be/src/http/action/stream_load.cpp
-- StreamLoadAction::_on_header; be/src/common/config.h), because JSON cannot be parsed as a stream
-- and the whole body is held in BE memory. So a partition goes in batches of at most
-- load_batch_size bytes, each its own Stream Load (its own label) into the staging table; only
-- when every batch is in does INSERT OVERWRITE swap the partition.

return function(M)
  function M.drop_stage(dst, dbname, stage)
    pcall(dst.exec, dst, "DROP TABLE IF EXISTS " .. M.qualified(dbname, stage) .. " FORCE")
  end

  local function remove_files(rec)
    for _, f in ipairs(rec and rec.files or {}) do pcall(ferry.fs.remove, f.path) end
  end

  --- A copier: ctx = {src, dst, http_url, user, password, load_retries, load_timeout, batch_rows,
  --- batch_bytes, counters = fn() -> the round's counters}. copier.copy(job) copies job = {db, t,
  --- part, version, id, partitioned, create, name} or raises; a retry of the same job reuses its
  --- stage, its batch files and their labels.
  function M.copier(ctx)
    local Q, QQ = M.quote, M.qualified
    local src, dst = ctx.src, ctx.dst
    local cap = math.max(math.floor(ctx.batch_bytes or 100 * 1024 * 1024), 64)
    local C = {}

    --- Streams the partition's rows into JSON array files of at most `cap` bytes each; returns
    --- {{path, rows, label}...}, the row count and the bytes.
    function C.write_batches(job, dir)
      local where = job.partitioned and (" PARTITION (%s)"):format(Q(job.part)) or ""
      local datetime = M.datetime_columns(src, job.db, job.t)
      local files, total, bytes = {}, 0, 0
      local cur -- {path, rows, size}
      local function open_file()
        local i = #files + 1
        local label = M.label(job.db, job.t, job.part, job.version, job.token .. "_b" .. i)
        cur = {path = dir .. "/" .. label .. ".json", rows = 0, size = 2, label = label}
        files[i] = cur
        ferry.fs.write(cur.path, "[")
      end
      local function close_file()
        if cur then ferry.fs.write(cur.path, "]", {append = true}); bytes = bytes + cur.size end
        cur = nil
      end
      -- Appends encoded text holding n rows (comma-joined) to the current file.
      local function put(text, n)
        if cur and cur.rows > 0 and cur.size + 1 + #text > cap then close_file() end
        if not cur then open_file() end
        if cur.rows > 0 then text = "," .. text end
        if cur.size + #text > cap then
          error(("%s: a row of %d bytes as JSON is larger than load_batch_size (%d bytes): raise " ..
            "load_batch_size, and the target BEs' streaming_load_max_batch_size_mb with it"):format(
            job.name, #text, cap), 0)
        end
        ferry.fs.write(cur.path, text, {append = true})
        cur.size, cur.rows = cur.size + #text, cur.rows + n
      end
      local buf = {}
      local function flush()
        if #buf == 0 then return end
        -- One encode per group of rows (much cheaper than one per row); the brackets come off.
        local chunk = ferry.json.encode(buf):sub(2, -2)
        local room = cur and (cap - cur.size - (cur.rows > 0 and 1 or 0)) or (cap - 2)
        if #chunk <= room then
          put(chunk, #buf)
        else
          -- The group crosses a file boundary: place its rows one by one.
          for _, row in ipairs(buf) do put(ferry.json.encode({row}):sub(2, -2), 1) end
        end
        buf = {}
      end
      for row in src:rows("SELECT * FROM " .. QQ(job.db, job.t) .. where) do
        for col in pairs(datetime) do
          local v = row[col]
          if type(v) == "string" then row[col] = v:gsub("T", " ", 1) end
        end
        total = total + 1
        buf[#buf + 1] = row
        if #buf >= ctx.batch_rows then flush() end
      end
      flush()
      close_file()
      local out = {}
      for i, f in ipairs(files) do out[i] = {path = f.path, rows = f.rows, label = f.label} end
      return out, total, bytes
    end

    --- One Stream Load of one batch file into db.stage under its label, retried under that label.
    function C.stream_load(job, batch)
      local url = ("%s/api/%s/%s/_stream_load"):format(ctx.http_url, M.urlencode(job.db), M.urlencode(job.stage))
      local counters = ctx.counters()
      local last
      for attempt = 1, math.max(ctx.load_retries, 1) do
        if attempt > 1 then ferry.task.sleep(math.min(2 ^ (attempt - 2), 30)) end
        counters.sent = counters.sent + 1
        local ok, r = pcall(ferry.http.request, {method = "PUT", url = url, file = batch.path,
          basic = {user = ctx.user, password = ctx.password},
          forward_auth = true, expect_continue = true, timeout = ctx.load_timeout + 60, retries = 3,
          headers = {label = batch.label, format = "json", strip_outer_array = "true",
                     timeout = tostring(math.floor(ctx.load_timeout))}})
        counters.sent = counters.sent - 1
        if not ok then
          last = type(r) == "table" and r.message or tostring(r)
        elseif r.status ~= 200 then
          last = ("HTTP %d: %s"):format(r.status, tostring(r.body):sub(1, 300))
          if r.status == 401 or r.status == 403 then break end
        else
          local answer = r:json()
          local outcome = M.load_outcome(answer)
          if outcome == "loaded" then
            if answer.Status ~= "Success" then
              ferry.log.info(("%s: Stream Load label %s: %s"):format(job.name, batch.label, answer.Status))
            end
            return answer
          elseif outcome == "running" then
            last = ("label %s is still loading (%s)"):format(batch.label, tostring(answer.ExistingJobStatus))
          else
            last = ("%s: %s%s"):format(tostring(answer.Status), tostring(answer.Message),
              answer.ErrorURL and (" (errors: " .. answer.ErrorURL .. ")") or "")
          end
        end
        ferry.log.warn(("%s: Stream Load attempt %d/%d failed: %s (label %s)"):format(job.name, attempt,
          ctx.load_retries, last, batch.label))
      end
      error(("Stream Load of %s (label %s) failed: %s"):format(job.name, batch.label, last), 0)
    end

    --- Stage table, Stream Load of every batch, row check, then INSERT OVERWRITE of the one
    --- partition (or, for a partition an automatic table does not have yet, INSERT INTO: the
    --- load creates it, as StarRocks' expression partitioning does), record.
    function C.copy(job)
      local counters = ctx.counters()
      local key = M.job_key(job.db, job.t, job.part)
      local rec = ferry.state.get(key)
      if not (rec and rec.version == job.version and rec.id == job.id) then
        if rec and rec.stage then M.drop_stage(dst, job.db, rec.stage) end
        remove_files(rec)
        local token = M.token()
        rec = {version = job.version, id = job.id, stage = M.STAGE_PREFIX .. token, token = token}
        ferry.state.set(key, rec)
      end
      job.stage, job.token = rec.stage, rec.token or rec.stage:sub(#M.STAGE_PREFIX + 1)
      dst:exec(("CREATE TABLE IF NOT EXISTS %s LIKE %s"):format(QQ(job.db, job.stage), QQ(job.db, job.t)))
      local dir = ferry.state.dir() .. "/loads"
      ferry.fs.mkdir(dir)
      local t0 = os.time()
      -- The batch files of an earlier attempt are reused as they are: the labels that went in
      -- stand for exactly those rows.
      local reuse = rec.files and #rec.files > 0
      for _, f in ipairs(rec.files or {}) do
        if not ferry.fs.exists(f.path) then reuse = false end
      end
      local files, n, bytes
      if reuse then
        files, n, bytes = rec.files, rec.rows, rec.bytes or 0
      else
        files, n, bytes = C.write_batches(job, dir)
        rec.files, rec.rows, rec.bytes = files, n, bytes
        ferry.state.set(key, rec)
      end
      local t1 = os.time()
      local all_success = true
      for _, batch in ipairs(files) do
        local answer = C.stream_load(job, batch)
        if answer.Status ~= "Success" then all_success = false end
      end
      local t2 = os.time()
      local staged = M.count_rows(dst, job.db, job.stage, nil)
      if staged ~= n and not all_success then
        -- Publish Timeout, or an earlier attempt's load: committed, maybe not visible yet.
        local ok, seen = pcall(ferry.task.poll, {every = 1, timeout = math.min(ctx.load_timeout, 120),
          describe = job.name .. ": staged rows becoming visible", check = function()
            local c = M.count_rows(dst, job.db, job.stage, nil)
            if c == n then return c end
            return false, c
          end})
        staged = ok and seen or M.count_rows(dst, job.db, job.stage, nil)
      end
      if staged ~= n then
        -- Someone dropped the stage after its load went in (or it holds a stale load): start over
        -- with a new stage and labels next time.
        M.drop_stage(dst, job.db, job.stage)
        remove_files(rec)
        ferry.state.set(key, nil)
        error(("%s: the staging table %s holds %d rows, the source partition %d; it was dropped, the next " ..
          "attempt loads again"):format(job.name, job.stage, staged, n), 0)
      end
      if job.create then
        -- Nothing of this partition is on the target yet; one INSERT creates and fills it.
        dst:exec(("INSERT INTO %s SELECT * FROM %s"):format(QQ(job.db, job.t), QQ(job.db, job.stage)))
      else
        local target = job.partitioned and (" PARTITION (%s)"):format(Q(job.part)) or ""
        dst:exec(("INSERT OVERWRITE %s%s SELECT * FROM %s"):format(QQ(job.db, job.t), target, QQ(job.db, job.stage)))
      end
      ferry.log.debug(("%s: read %ds, %d Stream Load(s) %ds, overwrite %ds"):format(job.name, t1 - t0, #files,
        t2 - t1, os.time() - t2))
      -- Recorded before the stage goes: a kill in between leaves a stage the next round sweeps.
      local s = M.synced(job.db, job.t)
      s[job.part] = job.record or {version = job.version, id = job.id}
      ferry.state.set(M.synced_key(job.db, job.t), s)
      ferry.state.set(key, nil)
      M.drop_stage(dst, job.db, job.stage)
      remove_files(rec)
      counters.rows = counters.rows + n
      counters.bytes = counters.bytes + bytes
      ferry.log.info(("%s: copied %d rows in %d batch(es) (source version %d)"):format(job.name, n, #files,
        job.version))
    end

    return C
  end

  --- Classifies a Stream Load JSON answer: "loaded" (Success, Publish Timeout, or the label's
  --- earlier load FINISHED), "running" (the label's load is still running), "retry" (Fail: the
  --- label stays free) or "error" (anything else).
  function M.load_outcome(answer)
    local status = answer.Status
    if status == "Success" or status == "Publish Timeout" then return "loaded" end
    if status == "Label Already Exists" then
      local existing = answer.ExistingJobStatus
      if existing == nil or existing == "FINISHED" then return "loaded" end
      return "running"
    end
    if status == "Fail" then return "retry" end
    return "error"
  end
end
