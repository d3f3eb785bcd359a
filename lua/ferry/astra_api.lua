-- astra-sideloader: the DevOps API's migration endpoints [../shared/reference/astra.md] and the
-- upload credentials they hand out, which renew themselves before they expire.
-- Used by scripts/astra-sideloader.lua.
local astra = require "ferry.astra"

local M = {}

--- A client of one database's migrations: base is <api_url>/v2/databases/<db_id>/migrations;
--- p holds the procedure's parameters (token, db_id, poll_interval).
function M.client(base, p)
  local function api(method, path, opts)
    opts = opts or {}
    if path:find("//", 1, true) then -- an empty migration id from the state dir
      ferry.fail("usage", "empty migration id in " .. path)
    end
    local r = ferry.http.request{method = method, url = base .. path, bearer = p.token, query = opts.query,
                                 retries = 5, retry_non_idempotent = opts.retry or false, timeout = 120}
    if r.dry_run then return nil, r end
    local ok, body = pcall(function() return r:json() end)
    if r.status == 401 or r.status == 403 then
      ferry.fail("auth", ("the DevOps API refused the token (HTTP %d)"):format(r.status),
        {hint = "use an application token with the Database Administrator role (or Create DB and View DB)"})
    end
    if r.status >= 300 or not ok then
      local words = ok and type(body) == "table" and body.errors and body.errors[1] and body.errors[1].message
        or r.body:sub(1, 200)
      return nil, r, words
    end
    return body, r
  end

  local function describe(s)
    local text = ("%s%s"):format(s.status, (s.progressInfo and s.progressInfo ~= "") and (" (" .. s.progressInfo .. ")") or "")
    if s.expectedCleanupTime then text = text .. "; cleanup at " .. s.expectedCleanupTime end
    return text
  end

  local last_shown
  local function show(s)
    local line = describe(s)
    if line ~= last_shown then
      ferry.log.info("migration " .. tostring(s.migrationID) .. ": " .. line)
      last_shown = line
    end
  end

  --- GET the status; nil, reason for the brief non-JSON or 404 answers after initialize.
  local function status(id)
    local s, r, words = api("GET", "/" .. id)
    if s then return s end
    if r and r.status == 404 and words and words:find("^404 page not found") then
      return nil, "404 page not found (the API does not know the migration yet)"
    end
    if r and r.status == 404 then
      ferry.fail("not_found", ("migration %s of database %s: %s"):format(id, p.db_id, tostring(words)),
        {hint = "check db_id and migration_id; a closed migration cannot be continued"})
    end
    return nil, ("HTTP %s: %s"):format(r and r.status or "?", tostring(words))
  end


  local function wait_for(id, want, timeout, what)
    return ferry.task.poll{
      every = p.poll_interval, timeout = timeout, describe = what,
      check = function()
        local s, why = status(id)
        if not s then return false, why end
        show(s)
        if want(s) then return s end
        if s.status ~= "Initializing" and s.status ~= "ReceivingFiles" and s.status ~= "ImportInProgress"
           and astra.terminal(s.status) and not want(s) then
          return s
        end
        return false, describe(s)
      end,
    }
  end

  return {api = api, describe = describe, show = show, status = status, wait_for = wait_for}
end

--- `cleanup_time`: an ISO time as is, or a duration from now (`14d`, `36h`) as an ISO time.
function M.cleanup_time(v)
  local n, unit = v:match("^(%d+)([smhd])$")
  if n then
    local mult = ({s = 1, m = 60, h = 3600, d = 86400})[unit]
    return astra.iso(os.time() + tonumber(n) * mult)
  end
  if not astra.epoch(v) then ferry.fail("usage", "cleanup_time: expected an ISO time or a duration like 14d, not " .. v) end
  return v
end

--- The upload credentials of migration `id`, fetched from its status and renewed before they
--- expire: `renew([stale])` returns the store to upload with and its generation (an upload refused
--- with generation `stale` forces a renewal unless another task renewed since); `current` the
--- state table (store, expires, dir...). p holds the procedure's parameters (poll_interval,
--- init_timeout, renew_before, aws_region, gcs_endpoint).
function M.credentials(client, id, p)
  local status, show, describe = client.status, client.show, client.describe
  -- Upload credentials. The API hands out new ones on GET status once the old ones expire (the
  -- docs leave open whether every GET rotates them), so: renew when they expire within
  -- renew_before, keep using the current ones while the API still returns them, and ask again
  -- at most every poll_interval until they change; a refused upload forces a renewal.
  local current = {generation = 0}
  -- The migration bucket is in the region of the Astra database, which MigrationStatus does not
  -- give: ask the bucket (HeadBucket's x-amz-bucket-region) unless aws_region is set, then
  -- AWS_REGION; signing for another region is refused (400 AuthorizationHeaderMalformed).
  local found_region
  local function region_of(st)
    if p.aws_region then return p.aws_region end
    if found_region ~= nil then return found_region or nil end
    local dir = st.uploadBucketDir or ""
    local bucket = dir:match("^s3://([^/]+)")
    if not bucket then return nil end
    local endpoint = os.getenv("AWS_ENDPOINT_URL") or os.getenv("AWS_ENDPOINT")
    local region, why = astra.bucket_region(bucket, endpoint)
    if region then
      ferry.log.info(("upload bucket %s is in %s"):format(bucket, region))
    else
      region = os.getenv("AWS_REGION") or os.getenv("AWS_DEFAULT_REGION")
      if not region and not endpoint then
        ferry.fail("unavailable", ("could not find the region of the migration bucket %s: %s"):format(bucket, why),
          {hint = "give it with -p aws_region=... (the region of the Astra database), then run the same command again"})
      end
      ferry.log.info(("region of bucket %s not given by S3 (%s): using %s"):format(bucket, why,
        region or "the endpoint's default"))
    end
    found_region = region or false
    return region
  end
  local function fetch()
    local s = ferry.task.poll{every = p.poll_interval, timeout = p.init_timeout, describe = "upload credentials",
      check = function()
        local st, why = status(id)
        if not st then return false, why end
        if st.status ~= "ReceivingFiles" then return st end
        local exp = astra.epoch(st.uploadCredentials and st.uploadCredentials.credentialExpiration)
        if exp and exp <= os.time() then return false, "the credentials returned have expired; waiting for new ones" end
        return st
      end}
    show(s)
    if s.status ~= "ReceivingFiles" then
      ferry.fail("conflict", ("migration %s is %s: uploads are closed"):format(id, describe(s)))
    end
    current.fetched = os.time()
    local keyid = astra.credential_id(s)
    if current.store and keyid == current.keyid then return end -- the same credentials: keep them
    local u = astra.upload_store(s, {aws_region = region_of(s), gcs_endpoint = p.gcs_endpoint})
    if current.store and u.cloud == "aws" and current.url == u.url then
      -- AWS session credentials are replaced in the open store: the parts still to send of a
      -- multipart upload under way (and its CompleteMultipartUpload) are signed with the new
      -- ones, where a new store would leave that upload to fail with ExpiredToken.
      current.store:set_credentials(u.opts)
    else
      local ok, store = pcall(ferry.store.open, u.url, u.opts)
      if not ok then
        local why = tostring(store)
        ferry.fail(why:match("%[([%w_]+)%]") or "auth",
          ("the %s upload credentials the DevOps API gave for migration %s do not open %s: %s"):format(
            u.cloud, id, u.shown, why:match("^[^\n]*")),
          {hint = "the credentials come from the migration status, not from this machine: run the same command " ..
            "again (new ones are fetched); if it goes on, check the migration status (-p action=status)"})
      end
      current.store = store
    end
    current.url = u.url
    current.keyid = keyid
    current.expires = astra.epoch(s.uploadCredentials.credentialExpiration) or (os.time() + 3600)
    current.dir = u.shown
    current.generation = current.generation + 1
    ferry.log.info(("upload credentials valid until %s"):format(tostring(s.uploadCredentials.credentialExpiration)))
  end
  -- The store to upload with; one renewal at a time (the concurrent uploads wait for it). `stale`
  -- (the generation an upload was refused with) forces a renewal unless another task renewed since.
  local function renew(stale)
    while current.renewing do ferry.task.sleep(0.05) end
    if current.store and (stale == nil or stale < current.generation) then
      local now = os.time()
      local left = current.expires - now
      if left > p.renew_before then return current.store, current.generation end
      -- expiring soon: ask, but not more often than poll_interval while they are still valid
      if left > 0 and now - (current.fetched or 0) < math.max(p.poll_interval, 1) then
        return current.store, current.generation
      end
    end
    current.renewing = true
    local ok, err = pcall(fetch)
    current.renewing = false
    if not ok then error(err, 0) end
    return current.store, current.generation
  end
  return {renew = renew, current = current,
          -- A renewer cancelled inside its fetch never clears the flag: clear it, or a later
          -- renew() waits for it forever (seen once: the upload ended while a renewal was asking).
          settle = function() current.renewing = false end}
end

return M
