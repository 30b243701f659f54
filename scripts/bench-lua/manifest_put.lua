-- wrk script for scripts/bench's manifest PUT workload: every request pushes a new small image
-- manifest (a distinct annotation, so a distinct digest) under a new tag, over keep-alive
-- connections. Arguments: repository, config digest, config size, layer digest, layer size,
-- and the Authorization header value ("" for none). done() prints one line for scripts/bench:
-- "created C other O duration_us D p50_us P p99_us Q" (responses that were 201 and not, the run's
-- length, latency percentiles over every response).
local counter = 0
local next_id = 0
local threads = {}

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  repo, cfg, cfg_size, layer, layer_size, auth = args[1], args[2], args[3], args[4], args[5], args[6]
  headers = {["Content-Type"] = "application/vnd.oci.image.manifest.v1+json"}
  if auth ~= nil and auth ~= "" then headers["Authorization"] = auth end
  created, other = 0, 0
end

function request()
  counter = counter + 1
  local tag = string.format("w%d-%d", id, counter)
  local body = string.format(
    '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",' ..
    '"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},' ..
    '"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%s}],' ..
    '"annotations":{"org.example.n":"%s"}}', cfg, cfg_size, layer, layer_size, tag)
  return wrk.format("PUT", "/v2/" .. repo .. "/manifests/" .. tag, headers, body)
end

function response(status, headers, body)
  if status == 201 then created = created + 1 else other = other + 1 end
end

function done(summary, latency, requests)
  local c, o = 0, 0
  for _, t in ipairs(threads) do
    c = c + t:get("created")
    o = o + t:get("other")
  end
  io.write(string.format("created %d other %d duration_us %d p50_us %d p99_us %d\n", c, o, summary.duration,
    latency:percentile(50), latency:percentile(99)))
end
