-- wrk script for one scenario against one server (bench/wrk.py writes the spec it loads).
--
-- Every thread drives one connection, so a thread's requests and responses alternate and W1 can
-- chain them: a draft save with the revision this thread last saw, then a publish of the same
-- post. A response that is not a 200 with data (GraphQL puts errors in a 200) counts as an error.

local spec
local threads = {}
local next_index = 1

function setup(thread)
  thread:set("index", next_index)
  next_index = next_index + 1
  table.insert(threads, thread)
end

function init(args)
  spec = dofile(args[1])
  errors = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  if spec.authorization then
    wrk.headers["Authorization"] = spec.authorization
  end
  math.randomseed(index * 7919)
  if spec.kind == "get" then
    -- A GET with the query in the URL (bench/cached.py): cacheable.
    wrk.headers["Content-Type"] = nil
    fixed = wrk.format("GET", spec.path)
  elseif spec.kind == "fixed" then
    fixed = wrk.format(nil, spec.path, nil, spec.body)
  elseif spec.kind == "write" then
    -- This thread's posts (every threads-th one) and the revision each is at.
    mine = {}
    for i = index, #spec.ids, spec.threads do
      table.insert(mine, { id = spec.ids[i], revision = spec.revisions[i] })
    end
    cursor = 1
    publishing = false
    step = 0
  end
end

function request()
  if spec.kind == "fixed" or spec.kind == "get" then
    return fixed
  elseif spec.kind == "by_id" then
    local id = spec.ids[math.random(#spec.ids)]
    return wrk.format(nil, spec.path, nil, spec.before .. id .. spec.after)
  end
  local post = mine[cursor]
  if publishing then
    return wrk.format(nil, spec.publish_path, nil, spec.publish_before .. post.id .. spec.publish_after)
  end
  step = step + 1
  local rating = (step % 50) / 10 + spec.rating_offset
  local body = spec.update_before .. post.id .. spec.update_middle .. rating
    .. spec.update_after .. post.revision .. spec.update_end
  return wrk.format(nil, spec.path, nil, body)
end

function response(status, headers, body)
  local failed = status ~= 200 or body:find('"errors"', 1, true) ~= nil
  if spec.kind == "write" then
    local post = mine[cursor]
    if publishing then
      publishing = false
      cursor = cursor % #mine + 1
    else
      local revision = body:match('"revision"%s*:%s*(%d+)')
      if revision then
        post.revision = tonumber(revision)
        publishing = true
      else
        failed = true
        -- A stale revision: the API says which one is current.
        local current = body:match('"currentRevision"%s*:%s*(%d+)')
        if current then
          post.revision = tonumber(current)
        end
      end
    end
  end
  if failed then
    errors = errors + 1
  end
end

-- Percentiles 1..99, 99.5 and 99.9 (microseconds), so several runs can be pooled.
local levels = {}
for level = 1, 99 do
  table.insert(levels, level)
end
table.insert(levels, 99.5)
table.insert(levels, 99.9)

function done(summary, latency, requests)
  local failed = 0
  for _, thread in ipairs(threads) do
    failed = failed + (thread:get("errors") or 0)
  end
  local quantiles = {}
  for _, level in ipairs(levels) do
    table.insert(quantiles, string.format("[%g, %d]", level, latency:percentile(level)))
  end
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "max_us": %d, "socket_errors": %d, "timeouts": %d,'
      .. ' "http_errors": %d, "failed": %d, "quantiles": [%s]}\n',
    summary.requests, summary.duration, latency.max,
    summary.errors.connect + summary.errors.read + summary.errors.write,
    summary.errors.timeout, summary.errors.status, failed, table.concat(quantiles, ", ")))
end
