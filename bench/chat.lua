-- Adapted from ../shared/bench/loadgen/chat.lua (the reference harness), unchanged protocol.
-- wrk script: POST an OpenAI chat-completions JSON body at fixed concurrency.
-- Configured through environment variables (read in every wrk thread):
--   BENCH_MODEL      model name                      (default gpt-4o-mini)
--   BENCH_STREAM     1 = "stream":true + include_usage (default 0)
--   BENCH_KEY        bearer token                    (default sk-bench)
--   BENCH_HEADERS    extra headers "k: v|k2: v2"
--   BENCH_VALIDATE   1 = check each body ("usage" / "[DONE]"), count bad ones
--   BENCH_MAXTOK     max_tokens                      (default 20)
--   BENCH_API        chat | messages (Anthropic) | responses (OpenAI Responses): the body
--                    shape; the URL says which endpoint (default chat)
-- done() prints one machine-readable line starting with RESULT.
local model    = os.getenv("BENCH_MODEL") or "gpt-4o-mini"
local stream   = os.getenv("BENCH_STREAM") == "1"
local validate = os.getenv("BENCH_VALIDATE") == "1"
local maxtok   = os.getenv("BENCH_MAXTOK") or "20"
local api      = os.getenv("BENCH_API") or "chat"

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_KEY") or "sk-bench")
local extra = os.getenv("BENCH_HEADERS")
if extra and #extra > 0 then
  for pair in string.gmatch(extra, "[^|]+") do
    local k, v = string.match(pair, "^%s*([^:]+):%s*(.-)%s*$")
    if k then wrk.headers[k] = v end
  end
end

local system = "You are a helpful assistant. Answer briefly."
local ask = "Write one short sentence about benchmarking HTTP gateways under load, please."
local body
if api == "messages" then
  body = '{"model":"' .. model .. '","system":"' .. system .. '","messages":['
    .. '{"role":"user","content":"' .. ask .. '"}],"max_tokens":' .. maxtok .. ',"temperature":0.2'
  if stream then body = body .. ',"stream":true' end
elseif api == "responses" then
  body = '{"model":"' .. model .. '","instructions":"' .. system .. '","input":"' .. ask .. '",'
    .. '"max_output_tokens":' .. maxtok .. ',"temperature":0.2,"store":false'
  if stream then body = body .. ',"stream":true' end
else
  body = '{"model":"' .. model .. '","messages":['
    .. '{"role":"system","content":"' .. system .. '"},'
    .. '{"role":"user","content":"' .. ask .. '"}],'
    .. '"max_tokens":' .. maxtok .. ',"temperature":0.2'
  if stream then body = body .. ',"stream":true,"stream_options":{"include_usage":true}' end
end
wrk.body = body .. '}'

local threads = {}
function setup(thread) table.insert(threads, thread) end

bad = 0
if validate then
  local ends = {chat = "[DONE]", messages = "message_stop", responses = "response.completed"}
  local marker = stream and ends[api] or '"usage"'
  function response(status, headers, b)
    if status ~= 200 or not string.find(b, marker, 1, true) then
      bad = bad + 1
      if bad <= 2 then io.stderr:write("BAD RESPONSE " .. status .. ": " .. string.sub(b, 1, 300) .. "\n") end
    end
  end
end

function done(summary, latency, requests)
  local nbad = 0
  for _, t in ipairs(threads) do nbad = nbad + (t:get("bad") or 0) end
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    "RESULT reqs=%d rps=%.1f mean_ms=%.2f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f "
    .. "err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d bad_body=%d\n",
    summary.requests, summary.requests / secs, latency.mean / 1000,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    e.connect, e.read, e.write, e.status, e.timeout, nbad))
end
