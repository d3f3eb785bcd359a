-- Seafile storage backends as ferry stores: seafile.conf parsing, the backend -> store mapping,
-- migrate.py's object-name filter, and content checks for verification.
-- Facts from ../shared/reference/seafile.md (seafobj's objstore_factory and backends).
local M = {}

-- Object types in migrate.py's order, with their seafile.conf sections.
M.TYPES = {"commits", "fs", "blocks"}
M.SECTIONS = {commits = "commit_object_backend", fs = "fs_object_backend", blocks = "block_backend"}

local function truthy(v)
  return v == "true" or v == "True" or v == "1" or v == "yes"
end

--- Reads seafile.conf from a file path or the folder holding it; returns (sections, ordered, path).
function M.read_conf(path)
  local st = ferry.fs.stat(path)
  if st and st.is_dir then
    path = path .. "/seafile.conf"
  end
  if not ferry.fs.exists(path) then
    ferry.fail("not_found", "no seafile.conf at " .. path, {path = path})
  end
  local text = ferry.fs.read(path)
  return ferry.ini.decode(text), ferry.ini.decode_ordered(text), path
end

local function reject(msg, hint)
  ferry.fail("invalid_input", msg .. (hint and (" -- " .. hint) or ""))
end

--- The store behind one object type of a configuration: {name, url, opts, shown}.
--- role is "source" or "destination"; seafile_data is the default fs root.
function M.backend(conf, dtype, seafile_data, role, conf_path)
  local section = M.SECTIONS[dtype]
  local sec = conf[section] or {}
  local name = sec.name or "fs"
  local where = ("[%s] of %s"):format(section, conf_path)
  if conf.store_crypt then
    reject(("%s enables storage encryption ([store_crypt])"):format(conf_path),
      "ferry copies objects byte for byte and cannot decrypt them; migrate.py --decrypt is the tool for encrypted storage")
  end
  if name == "fs" then
    local root = sec.dir or seafile_data
    if not root or root == "" then
      reject(where .. ": a filesystem backend needs `dir` or the seafile_data parameter")
    end
    root = ferry.fs.absolute(root)
    return {name = "fs", url = "file://" .. root .. "/storage/" .. dtype,
            opts = {layout = "seafile-fs", create = role == "destination"},
            shown = root .. "/storage/" .. dtype}
  elseif name == "s3" then
    if not sec.bucket then reject(where .. ": name = s3 needs a bucket") end
    if not sec.host and not sec.aws_region then
      reject(where .. ": an S3 backend needs `host` (S3-compatible server) or `aws_region` (AWS)",
        "seafobj 11+ refuses such a section too; add aws_region = <region> or host = <host:port>")
    end
    local opts = {region = sec.aws_region or "us-east-1"}
    if sec.key_id then opts.access_key_id = sec.key_id end
    if sec.key then opts.secret_access_key = sec.key end
    if sec.host then
      local https = truthy(sec.use_https)
      opts.endpoint = (https and "https://" or "http://") .. sec.host
      opts.allow_http = not https
      opts.virtual_hosted_style = not truthy(sec.path_style_request)
    end
    if sec.sse_c_key then opts.sse_c_key = sec.sse_c_key end
    if sec.use_v4_signature and not truthy(sec.use_v4_signature) then
      ferry.log.warn(where .. ": use_v4_signature = false; ferry always signs with V4 (Seafile 11+ needs V4 for migration too)")
    end
    return {name = "s3", url = "s3://" .. sec.bucket, opts = opts,
            shown = (sec.host or ("s3." .. (sec.aws_region or "") .. ".amazonaws.com")) .. "/" .. sec.bucket}
  elseif name == "oss" then
    if not sec.bucket then reject(where .. ": name = oss needs a bucket") end
    if not sec.endpoint and not sec.region then
      reject(where .. ": an OSS backend needs `endpoint` or `region`")
    end
    local host = sec.endpoint or ("oss-cn-" .. sec.region .. "-internal.aliyuncs.com")
    local https = truthy(sec.use_https)
    -- Alibaba OSS through its S3-compatible API (virtual-hosted style, V4 signatures).
    return {name = "oss", url = "s3://" .. sec.bucket,
            opts = {endpoint = (https and "https://" or "http://") .. host, allow_http = not https,
                    virtual_hosted_style = true, region = sec.region and ("oss-cn-" .. sec.region) or "oss",
                    access_key_id = sec.key_id, secret_access_key = sec.key},
            shown = host .. "/" .. sec.bucket}
  elseif name == "ceph" then
    reject(where .. ": Ceph RADOS (name = ceph) is reached through librados, which ferry does not speak",
      "put the Ceph Object Gateway (RGW) in front of the pool and describe it as name = s3 with host = <rgw host:port>, or use migrate.sh for this pool")
  elseif name == "swift" then
    if role == "destination" then
      reject(where .. ": Swift cannot be a destination",
        "seafobj has no Swift writer, so Seafile's own migrate.py fails every object too; choose s3, oss or fs")
    end
    reject(where .. ": ferry does not speak Swift's native API",
      "enable Swift's S3 API (the s3api middleware) and describe the container as name = s3 with host = <proxy>")
  end
  reject(where .. ": unknown backend name '" .. tostring(name) .. "'", "Seafile knows fs, s3, ceph, swift and oss")
end

--- migrate.py's object-name filter (invalid_obj): `repo_id/obj_id` with a UUID-like repo id
--- (32 hex digits, hyphens allowed) and a 40-character lower-case hex object id. Temporary
--- files (`<38hex>.XXXXXX`, `tmpXXXX`) fail it and are left alone.
function M.valid_key(key)
  local repo, obj = key:match("^([^/]+)/([^/]+)$")
  if not repo then return nil end
  local hex = repo:gsub("[{}%-]", "")
  if #hex ~= 32 or hex:find("[^%x]") then return nil end
  if #obj ~= 40 or obj:find("[^0-9a-f]") then return nil end
  return key
end

--- Checks an object's content against its id: blocks are SHA-1 of their bytes, fs objects SHA-1
--- of their inflated bytes; commits are JSON (their id covers selected fields only).
function M.check_content(dtype, key, data)
  local id = key:match("/(%x+)$")
  if dtype == "blocks" then
    return ferry.digest.sha1(data) == id
  elseif dtype == "fs" then
    local ok, plain = pcall(ferry.zlib.decompress, data)
    return ok and ferry.digest.sha1(plain) == id
  else
    return (pcall(ferry.json.decode, data))
  end
end

--- seafile.conf with the backend sections of `dest` and every other section of `orig`, in the
--- original order (backend sections missing from the original are appended).
function M.merge_conf(orig_ordered, dest_ordered)
  local backend = {}
  for _, s in ipairs(dest_ordered) do
    for _, section in pairs(M.SECTIONS) do
      if s.name == section then backend[section] = s end
    end
  end
  local out, used = {}, {}
  for _, s in ipairs(orig_ordered) do
    if backend[s.name] then
      out[#out + 1] = backend[s.name]
      used[s.name] = true
    else
      -- Not replaced by the new configuration: kept as it was.
      out[#out + 1] = s
    end
  end
  for _, dtype in ipairs(M.TYPES) do
    local section = M.SECTIONS[dtype]
    if backend[section] and not used[section] then out[#out + 1] = backend[section] end
  end
  return out
end

return M
