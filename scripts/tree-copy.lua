-- Copy a directory tree into another directory and verify it (example procedure).
--
-- A small but complete runbook: it scans the source, asks before writing, copies the files that
-- are missing or differ in size with bounded parallelism, then verifies every file. `ferry demo`
-- runs it on generated data. Kill it at any point and run the same command again: finished steps
-- are skipped and the copy step only copies what is still missing.

local p = ferry.params{
  {name = "source", type = "path", required = true, doc = "folder to copy from"},
  {name = "target", type = "path", required = true, doc = "folder to copy into"},
  {name = "concurrency", type = "integer", default = 8, doc = "files copied at once"},
  {name = "verify", type = "string", default = "sha256", choices = {"size", "sha256"},
   doc = "how copied files are checked: size, or sha256 of the content"},
}

local function source_files()
  local files = {}
  for _, e in ipairs(ferry.fs.walk(p.source)) do
    if not e.is_dir then
      files[#files + 1] = e
    end
  end
  return files
end

local scan = ferry.step("scan", "Scan the source folder", function()
  local files, bytes = source_files(), 0
  for _, e in ipairs(files) do
    bytes = bytes + e.size
  end
  return {files = #files, bytes = bytes}
end)

ferry.step("confirm-target", "Confirm the target folder", function()
  ferry.confirm(("Copy %d files (%d bytes) from %s into %s?"):format(
    scan.files, scan.bytes, p.source, p.target))
end)

ferry.step("copy", "Copy missing or changed files", function()
  local files = source_files()
  local progress = ferry.log.progress{title = "copy", total = #files}
  local copied, skipped, bytes = 0, 0, 0
  ferry.task.parallel(files, {concurrency = p.concurrency}, function(e)
    local dst = p.target .. "/" .. e.rel
    local st = ferry.fs.stat(dst)
    if st and st.size == e.size then
      skipped = skipped + 1
    else
      -- Call first, then add: `bytes = bytes + ferry.fs.copy(...)` would read `bytes` before the
      -- call yields to other tasks and lose their additions.
      local n = ferry.fs.copy(e.path, dst)
      bytes = bytes + n
      copied = copied + 1
    end
    progress:inc(1)
  end)
  progress:finish()
  return {copied = copied, skipped = skipped, bytes = bytes}
end)

ferry.step("verify", "Verify every copied file", function()
  if ferry.dry_run() then
    ferry.log.info("dry run: nothing was copied, so nothing to verify")
    return {verified = 0}
  end
  local files = source_files()
  local bad = {}
  ferry.task.parallel(files, {concurrency = p.concurrency}, function(e)
    local dst = p.target .. "/" .. e.rel
    local st = ferry.fs.stat(dst)
    if not st or st.size ~= e.size then
      bad[#bad + 1] = e.rel
    elseif p.verify == "sha256" and ferry.fs.sha256(e.path) ~= ferry.fs.sha256(dst) then
      bad[#bad + 1] = e.rel
    end
  end)
  if #bad > 0 then
    table.sort(bad)
    ferry.fail("conflict", ("%d file(s) differ after the copy, first: %s"):format(#bad, bad[1]))
  end
  return {verified = #files, method = p.verify}
end)
