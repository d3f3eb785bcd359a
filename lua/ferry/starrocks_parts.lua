-- starrocks-sync: what SHOW PARTITIONS says about a partition, and whether its data moved.
-- Installed into ferry.starrocks (M) by require("ferry.starrocks_parts")(M).
--
-- * One row per physical partition (FE PartitionsProcDir.getPartitionInfos loops over
--   partition.getSubPartitions()): a random-bucketed table can show several rows under one
--   PartitionName, each with its own PartitionId and VisibleVersion. ferry copies by name (SELECT
--   ... PARTITION (name) reads them all) and keeps, per name, the version of every physical id.
-- * Shared-data clusters publish a new VisibleVersion for every compaction (docs
--   administration/management/compaction.md) and show it as CompactVersion
--   (PartitionsProcDir.getLakePartitionInfo, from CompactionMgr statistics per physical
--   partition). SHOW PARTITIONS has no data version, but information_schema.partitions_meta has
--   DATA_VERSION: LakeTableTxnLogApplier.applyVisibleLog moves it with every publish except a
--   LAKE_COMPACTION one, so equal DATA_VERSIONs mean only compactions happened, however many.
--   Without that column (older clusters) the narrow rule stays: moved by exactly one version, to
--   its CompactVersion, with the same RowCount. Anything else is copied: never a missed load.

return function(M)
  local function int(v) return math.tointeger(tonumber(v)) end

  --- SHOW PARTITIONS in order, one entry per partition name: {name, version (the highest of its
  --- physical partitions), id (their ids and versions, as one text), phys = {{id, version,
  --- compact, rows}}, rows, buckets, dist, bytes}; columns read by name [§2.1].
  function M.partitions_of(db, dbname, t)
    local rows = db:query("SHOW PARTITIONS FROM " .. M.qualified(dbname, t))
    local out, by = {}, {}
    local data = {}
    if rows[1] and rows[1].CompactVersion ~= nil then
      -- Shared-data: the data version of every physical partition, when the cluster has it.
      local ok, meta = pcall(db.query, db, ("SELECT PARTITION_ID, DATA_VERSION FROM information_schema.partitions_meta " ..
        "WHERE DB_NAME = '%s' AND TABLE_NAME = '%s'"):format(dbname:gsub("'", "''"), (t:gsub("'", "''"))))
      if ok then
        for _, r in ipairs(meta) do
          if r.DATA_VERSION ~= nil then data[tostring(r.PARTITION_ID)] = int(r.DATA_VERSION) end
        end
      end
    end
    for _, r in ipairs(rows) do
      local name = r.PartitionName
      local e = by[name]
      if not e then
        e = {name = name, version = 0, rows = 0, bytes = 0, phys = {}, buckets = tostring(r.Buckets),
             dist = tostring(r.DistributionKey)}
        by[name] = e
        out[#out + 1] = e
      end
      local p = {id = tostring(r.PartitionId), version = int(r.VisibleVersion) or 0,
                 compact = int(r.CompactVersion), rows = int(r.RowCount) or 0}
      p.data = data[p.id]
      e.phys[#e.phys + 1] = p
      e.version = math.max(e.version, p.version)
      e.rows = e.rows + p.rows
      local b = M.size_bytes(r.DataSize)
      e.bytes = b and e.bytes and e.bytes + b or nil
    end
    for _, e in ipairs(out) do
      local ids = {}
      for _, p in ipairs(e.phys) do ids[#ids + 1] = p.id .. "@" .. p.version end
      table.sort(ids)
      e.id = table.concat(ids, ",")
    end
    return out
  end

  --- What ferry records for a partition it copied (or saw compacted): per physical id its
  --- version and rows.
  function M.partition_record(part)
    local phys = {}
    for _, p in ipairs(part.phys) do phys[p.id] = {version = p.version, rows = p.rows, data = p.data} end
    return {version = part.version, id = part.id, phys = phys}
  end

  --- Whether the partition's data may have changed since `last` was recorded: false when nothing
  --- moved; "compacted" when only compactions moved it (record it again, copy nothing); true
  --- otherwise.
  function M.partition_moved(last, part)
    if not last then return true end
    if not last.phys then
      -- State written before physical partitions were told apart: {version, id}.
      return not (#part.phys == 1 and last.version == part.version and last.id == part.phys[1].id)
    end
    local compacted, seen = false, 0
    for _, p in ipairs(part.phys) do
      local l = last.phys[p.id]
      if not l then return true end
      seen = seen + 1
      if l.data and p.data then
        -- DATA_VERSION moves with loads, not compactions.
        if l.data ~= p.data then return true end
        if l.version ~= p.version then compacted = true end
      elseif l.version ~= p.version then
        if p.compact and p.compact == p.version and p.version == l.version + 1 and p.rows == l.rows then
          compacted = true
        else
          return true
        end
      end
    end
    for _ in pairs(last.phys) do seen = seen - 1 end
    if seen ~= 0 then return true end -- a physical partition went away
    return compacted and "compacted" or false
  end

  --- Whether SHOW CREATE TABLE text is of an automatic (expression) partitioned table: PARTITION
  --- BY without a partition list (ExpressionRangePartitionInfoV2.toSql, automatic
  --- ListPartitionInfo); its partitions are created by the loads that need them.
  function M.automatic(ddl)
    return ddl:find("PARTITION%s+BY") ~= nil and ddl:find("PARTITION%s+`?[%w_]+`?%s+VALUES") == nil
  end
end
