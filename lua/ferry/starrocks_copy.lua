-- starrocks-sync: copying one partition [reference §3.1; docs/procedures/starrocks-sync.md "How
-- ferry copies data"]. Installed into ferry.starrocks (M) by require("ferry.starrocks_copy")(M).
--
-- A partition's rows are streamed from SELECT ... PARTITION straight into one chunked CSV Stream
-- Load into a staging table (no file in the state dir; ferry.http's query body, bounded memory);
-- only when the staged row count equals the rows sent does INSERT OVERWRITE swap the partition.
-- CSV streams through the BE. JSON, the fallback for values CSV without quoting cannot carry, does
-- not: the BE buffers a JSON body whole (be/src/http/action/stream_load.cpp
-- StreamLoadAction::on_chunk_data) and refuses one over streaming_load_max_batch_size_mb by its
-- Content-Length (_on_header), so the JSON fallback goes in several loads of at most
-- load_batch_size bytes each, all into the same stage: the partition is still swapped once.

return function(M)
  function M.drop_stage(dst, dbname, stage)
    pcall(dst.exec, dst, "DROP TABLE IF EXISTS " .. M.qualified(dbname, stage) .. " FORCE")
  end

  local function remove_files(rec)
    for _, f in ipairs(rec and rec.files or {}) do pcall(ferry.fs.remove, f.path) end
  end

  --- A copier: ctx = {src, dst, http_url, user, password, load_retries, load_timeout, batch_rows
  --- (unused), batch_bytes (the most bytes of one JSON fallback load), counters = fn() -> the
  --- round's counters}.
  --- copier.copy(job) copies job = {db, t,
  --- part, version, id, partitioned, create, name} or raises; a retry of the same job reuses its
  --- stage, its batch files and their labels.
  function M.copier(ctx)
    local Q, QQ = M.quote, M.qualified
    local src, dst = ctx.src, ctx.dst
    local C = {}

    --- One PUT of a Stream Load: returns the answer and the response when the label loaded, or
    --- nil, why it failed, and whether another attempt is pointless (401/403).
    local function put(job, url, label, headers, body)
      local counters = ctx.counters()
      counters.sent = counters.sent + 1
      local ok, r = pcall(ferry.http.request, {method = "PUT", url = url, body = body,
        basic = {user = ctx.user, password = ctx.password}, resolve_redirect = true,
        forward_auth = true, expect_continue = true, timeout = ctx.load_timeout + 60, headers = headers})
      counters.sent = counters.sent - 1
      if not ok then return nil, (type(r) == "table" and r.message or tostring(r)) end
      if r.status ~= 200 then
        return nil, ("HTTP %d: %s"):format(r.status, tostring(r.body):sub(1, 300)), r.status == 401 or r.status == 403
      end
      local answer = r:json()
      local outcome = M.load_outcome(answer)
      if outcome == "loaded" then
        if answer.Status ~= "Success" then
          ferry.log.info(("%s: Stream Load label %s: %s"):format(job.name, label, answer.Status))
        end
        return answer, r
      elseif outcome == "running" then
        return nil, ("label %s is still loading (%s)"):format(label, tostring(answer.ExistingJobStatus))
      end
      return nil, ("%s: %s%s"):format(tostring(answer.Status), tostring(answer.Message),
        answer.ErrorURL and (" (errors: " .. answer.ErrorURL .. ")") or "")
    end

    --- The JSON fallback: the partition's rows as JSON arrays of at most ctx.batch_bytes each
    --- (load_batch_size), one Stream Load per batch into the stage, labels _j1, _j2... A JSON
    --- body is buffered whole by the BE (StreamLoadAction::on_chunk_data) and, with its
    --- Content-Length, refused above streaming_load_max_batch_size_mb unless ignore_json_size
    --- (StreamLoadAction::_on_header); batches under that cap need neither the header nor the
    --- BE's memory for the whole partition. Each batch is a string body: a retry re-sends the
    --- same rows under the same label. Returns the rows and bytes sent.
    local function json_batches(job, url, sql, dcols)
      -- A later attempt of this job must not reuse these labels with other rows (a new SELECT
      -- may cut the batches elsewhere): it starts over with a new stage (see C.copy).
      local key = M.job_key(job.db, job.t, job.part)
      local rec = ferry.state.get(key)
      if rec then rec.batched = true; ferry.state.set(key, rec) end
      local next_batch = ferry.http.row_batches{db = src, sql = sql, format = "json_array",
        datetime_columns = dcols, max_bytes = math.max(math.floor(ctx.batch_bytes), 1)}
      local rows, bytes, i, all_success = 0, 0, 0, true
      while true do
        local body, n = next_batch()
        if not body then break end
        i = i + 1
        local label = M.label(job.db, job.t, job.part, job.version, job.token .. "_j" .. i)
        local headers = {label = label, timeout = tostring(math.floor(ctx.load_timeout)), format = "json",
          strip_outer_array = "true"}
        local answer, last, stop
        for attempt = 1, math.max(ctx.load_retries, 1) do
          if attempt > 1 then ferry.task.sleep(math.min(2 ^ (attempt - 2), 30)) end
          answer, last, stop = put(job, url, label, headers, body)
          if answer or stop then break end
          ferry.log.warn(("%s: Stream Load of JSON batch %d, attempt %d/%d failed: %s (label %s)"):format(
            job.name, i, attempt, ctx.load_retries, last, label))
        end
        if not answer then
          error(("Stream Load of %s failed (JSON batch %d): %s"):format(job.name, i, tostring(last)), 0)
        end
        rows, bytes = rows + n, bytes + #body
        all_success = all_success and answer.Status == "Success"
      end
      ferry.log.info(("%s: %d rows in %d JSON loads of at most %d bytes"):format(job.name, rows, i,
        math.floor(ctx.batch_bytes)))
      return rows, bytes, all_success
    end

    --- One streamed Stream Load of the partition's rows into db.stage: SELECT ... PARTITION goes
    --- straight into a chunked PUT (no file), CSV with \x01 between columns and \x02 after rows
    --- (STREAM_LOAD.md column_separator/row_delimiter, hex form; NULL as \N). The label is fixed
    --- per partition: a retry re-runs the SELECT under the same label, and a load that committed
    --- unseen answers Label Already Exists. A partition whose values CSV cannot carry goes as
    --- JSON in bounded batches instead (json_batches). Returns the answer (after JSON batches,
    --- {Status} summing them up), the rows sent (nil when the label had already loaded) and the
    --- bytes.
    function C.stream_load(job)
      local url = ("%s/api/%s/%s/_stream_load"):format(ctx.http_url, M.urlencode(job.db), M.urlencode(job.stage))
      local where = job.partitioned and (" PARTITION (%s)"):format(Q(job.part)) or ""
      local sql = "SELECT * FROM " .. QQ(job.db, job.t) .. where
      local dcols = {}
      for c in pairs(M.datetime_columns(src, job.db, job.t)) do dcols[#dcols + 1] = c end
      local last
      local label = M.label(job.db, job.t, job.part, job.version, job.token .. "_c")
      local headers = {label = label, timeout = tostring(math.floor(ctx.load_timeout)), format = "csv",
        column_separator = "\\x01", row_delimiter = "\\x02"}
      for attempt = 1, math.max(ctx.load_retries, 1) do
        if attempt > 1 then ferry.task.sleep(math.min(2 ^ (attempt - 2), 30)) end
        local body = {db = src, sql = sql, datetime_columns = dcols, format = "csv", column_separator = "\1",
          row_delimiter = "\2"}
        local answer, r, stop = put(job, url, label, headers, body)
        if answer then
          local rows = answer.Status ~= "Label Already Exists" and r.sent and r.sent.rows or nil
          return answer, rows, (r.sent and r.sent.bytes or 0), label
        end
        last = r
        if last:find("csv_unsafe", 1, true) then
          ferry.log.info(("%s: a value CSV cannot carry; loading as JSON instead (%s)"):format(job.name, last))
          local rows, bytes, all_success = json_batches(job, url, sql, dcols)
          -- Publish Timeout of a batch: committed, maybe not visible yet (C.copy waits for it).
          return {Status = all_success and "Success" or "Publish Timeout"}, rows, bytes
        end
        ferry.log.warn(("%s: Stream Load attempt %d/%d failed: %s (label %s)"):format(job.name, attempt,
          ctx.load_retries, last, label))
        if stop then break end
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
      if not (rec and rec.version == job.version and rec.id == job.id and not rec.batched) then
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
      -- The job's record goes first, then the partition is recorded as synced, then the stage
      -- goes: a kill after the first write redoes the copy (a new stage and label; the overwrite
      -- is idempotent), a kill after the second leaves a stage no job refers to, which the next
      -- round sweeps. (The other order left, after a kill between the two writes, a stage a
      -- finished job still referred to, never swept: seed 2206 at 91 kills.)
      ferry.state.set(key, nil)
      local s = M.synced(job.db, job.t)
      s[job.part] = job.record or {version = job.version, id = job.id}
      ferry.state.set(M.synced_key(job.db, job.t), s)
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
