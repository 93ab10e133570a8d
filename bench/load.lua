-- The wrk load of `make bench-compare`, the same for both stores.
--   API=dynamo  PUT /kv/KEY (body = value), GET /kv/KEY
--   API=etcd    POST /v3/kv/put {"key","value"}, POST /v3/kv/range {"key"} (etcd's JSON gateway)
--   OP=put      random keys (bench-<thread>-<n>), 100-byte values
--   OP=get      random keys among the preloaded pre-0 .. pre-(KEYS-1)
-- (bench/preload.py writes the preloaded keys: wrk cannot send each request exactly once.)
-- Every request is built once, in init, so wrk spends its CPU on sending, not on Lua.
local api = os.getenv("API") or "dynamo"
local op = os.getenv("OP") or "put"
local keys = tonumber(os.getenv("KEYS") or "10000")
local value = string.rep("x", tonumber(os.getenv("VALUE_SIZE") or "100"))
local PREBUILT = 150000
local b64chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

local function b64(data)
  return ((data:gsub(".", function(x)
    local r, b = "", x:byte()
    for i = 8, 1, -1 do r = r .. (b % 2 ^ i - b % 2 ^ (i - 1) > 0 and "1" or "0") end
    return r
  end) .. "0000"):gsub("%d%d%d?%d?%d?%d?", function(x)
    if #x < 6 then return "" end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == "1" and 2 ^ (6 - i) or 0) end
    return b64chars:sub(c + 1, c + 1)
  end) .. ({ "", "==", "=" })[#data % 3 + 1])
end

local encodedValue = b64(value)

local function build(method, key)
  if api == "etcd" then
    local json = { ["Content-Type"] = "application/json" }
    if method == "PUT" then
      return wrk.format("POST", "/v3/kv/put", json, '{"key":"' .. b64(key) .. '","value":"' .. encodedValue .. '"}')
    end
    return wrk.format("POST", "/v3/kv/range", json, '{"key":"' .. b64(key) .. '"}')
  end
  if method == "PUT" then return wrk.format("PUT", "/kv/" .. key, nil, value) end
  return wrk.format("GET", "/kv/" .. key)
end

local count = 0
function setup(thread)
  thread:set("id", count)
  count = count + 1
end

local requests = {}
local next = 1
function init(args)
  math.randomseed(1000 + id)
  if op == "get" then
    for i = 0, keys - 1 do requests[#requests + 1] = build("GET", "pre-" .. i) end
  else
    -- Fresh keys only: a put without a context on an existing key would add a sibling.
    for i = 1, PREBUILT do requests[#requests + 1] = build("PUT", "bench-" .. id .. "-" .. i) end
  end
end

function request()
  if op == "get" then return requests[math.random(#requests)] end
  local r = requests[next]
  next = next + 1
  if r then return r end
  return build("PUT", "bench-" .. id .. "-" .. next)
end

-- Prints one machine-readable line after a wrk run: REPORT p50 p99 p99.9 (milliseconds).
function done(summary, latency, requests)
  io.write(string.format("REPORT %.3f %.3f %.3f\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency:percentile(99.9) / 1000))
end
