-- starrocks-sync: copying one partition [reference §3.1; docs/procedures/starrocks-sync.md "How
-- ferry copies data"]. Installed into ferry.starrocks (M) by require("ferry.starrocks_copy")(M).
--
-- A partition's rows are streamed from SELECT ... PARTITION straight into one chunked Stream Load
-- into a staging table (no file in the state dir; ferry.http's query body, bounded memory); only
-- when the staged row count equals the rows sent does INSERT OVERWRITE swap the partition. A
-- chunked body has no Content-Length, so the BE's JSON size limit (streaming_load_max_batch_size_mb,
-- checked on Content-Length in be/src/http/action/stream_load.cpp StreamLoadAction::_on_header)
-- does not split loads any more; CSV is preferred, JSON is the fallback for values CSV without
-- quoting cannot carry.

return function(M)
  function M.drop_stage(dst, dbname, stage)
    pcall(dst.exec, dst, "DROP TABLE IF EXISTS " .. M.qualified(dbname, stage) .. " FORCE")
  end

  local function remove_files(rec)
    for _, f in ipairs(rec and rec.files or {}) do pcall(ferry.fs.remove, f.path) end
  end

  --- A copier: ctx = {src, dst, http_url, user, password, load_retries, load_timeout, batch_rows,
  --- batch_bytes (unused since loads stream), counters = fn() -> the round's counters}.
  --- copier.copy(job) copies job = {db, t,
  --- part, version, id, partitioned, create, name} or raises; a retry of the same job reuses its
  --- stage, its batch files and their labels.
  function M.copier(ctx)
    local Q, QQ = M.quote, M.qualified
    local src, dst = ctx.src, ctx.dst
    local C = {}

    --- One streamed Stream Load of the partition's rows into db.stage: SELECT ... PARTITION goes
    --- straight into a chunked PUT (no file), CSV with \x01 between columns and \x02 after rows
    --- (STREAM_LOAD.md column_separator/row_delimiter, hex form; NULL as \N), or a JSON array
    --- (format json + strip_outer_array) for a partition whose values CSV cannot carry. A chunked
    --- body has no Content-Length, so the BE's JSON size check (StreamLoadAction::_on_header)
    --- does not apply. The label is fixed per partition and format: a retry re-runs the SELECT
    --- under the same label, and a load that committed unseen answers Label Already Exists.
    --- Returns the answer and the rows sent (nil when the label had already loaded).
    function C.stream_load(job)
      local url = ("%s/api/%s/%s/_stream_load"):format(ctx.http_url, M.urlencode(job.db), M.urlencode(job.stage))
      local where = job.partitioned and (" PARTITION (%s)"):format(Q(job.part)) or ""
      local dcols = {}
      for c in pairs(M.datetime_columns(src, job.db, job.t)) do dcols[#dcols + 1] = c end
      local counters = ctx.counters()
      local format, last = "csv", nil
      local attempt = 0
      while attempt < math.max(ctx.load_retries, 1) do
        attempt = attempt + 1
        if attempt > 1 then ferry.task.sleep(math.min(2 ^ (attempt - 2), 30)) end
        local label = M.label(job.db, job.t, job.part, job.version, job.token .. (format == "csv" and "_c" or "_j"))
        local headers = {label = label, timeout = tostring(math.floor(ctx.load_timeout))}
        local body = {db = src, sql = "SELECT * FROM " .. QQ(job.db, job.t) .. where, datetime_columns = dcols}
        if format == "csv" then
          headers.format, headers.column_separator, headers.row_delimiter = "csv", "\\x01", "\\x02"
          body.format, body.column_separator, body.row_delimiter = "csv", "\1", "\2"
        else
          headers.format, headers.strip_outer_array = "json", "true"
          body.format = "json_array"
        end
        counters.sent = counters.sent + 1
        local ok, r = pcall(ferry.http.request, {method = "PUT", url = url, body = body,
          basic = {user = ctx.user, password = ctx.password}, resolve_redirect = true,
          forward_auth = true, expect_continue = true, timeout = ctx.load_timeout + 60, headers = headers})
        counters.sent = counters.sent - 1
        local msg = not ok and (type(r) == "table" and r.message or tostring(r)) or nil
        if msg and msg:find("csv_unsafe", 1, true) and format == "csv" then
          ferry.log.info(("%s: a value CSV cannot carry; loading as JSON instead (%s)"):format(job.name, msg))
          format, attempt = "json", attempt - 1
        elseif msg then
          last = msg
        elseif r.status ~= 200 then
          last = ("HTTP %d: %s"):format(r.status, tostring(r.body):sub(1, 300))
          if r.status == 401 or r.status == 403 then break end
        else
          local answer = r:json()
          local outcome = M.load_outcome(answer)
          if outcome == "loaded" then
            if answer.Status ~= "Success" then
              ferry.log.info(("%s: Stream Load label %s: %s"):format(job.name, label, answer.Status))
            end
            local rows = answer.Status ~= "Label Already Exists" and r.sent and r.sent.rows or nil
            return answer, rows, (r.sent and r.sent.bytes or 0), label
          elseif outcome == "running" then
            last = ("label %s is still loading (%s)"):format(label, tostring(answer.ExistingJobStatus))
          else
            last = ("%s: %s%s"):format(tostring(answer.Status), tostring(answer.Message),
              answer.ErrorURL and (" (errors: " .. answer.ErrorURL .. ")") or "")
          end
        end
        if last then
          ferry.log.warn(("%s: Stream Load attempt %d/%d failed: %s (label %s)"):format(job.name, attempt,
            ctx.load_retries, last, label))
        end
      end
      error(("Stream Load of %s failed: %s"):format(job.name, tostring(last)), 0)
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
      local t0 = os.time()
      local answer, n, bytes = C.stream_load(job)
      local all_success = answer.Status == "Success"
      if not n then
        -- The label had loaded in an earlier attempt whose answer was lost: the rows it holds are
        -- the source partition's (same version), counted there.
        n = M.count_rows(src, job.db, job.t, job.partitioned and job.part or nil)
      end
      local t1, t2 = t0, os.time()
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
      ferry.log.debug(("%s: streamed Stream Load %ds, overwrite %ds"):format(job.name, t2 - t1, os.time() - t2))
      -- Recorded before the stage goes: a kill in between leaves a stage the next round sweeps.
      local s = M.synced(job.db, job.t)
      s[job.part] = job.record or {version = job.version, id = job.id}
      ferry.state.set(M.synced_key(job.db, job.t), s)
      ferry.state.set(key, nil)
      M.drop_stage(dst, job.db, job.stage)
      remove_files(rec)
      counters.rows = counters.rows + n
      counters.bytes = counters.bytes + bytes
      ferry.log.info(("%s: copied %d rows, streamed (source version %d)"):format(job.name, n, job.version))
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
