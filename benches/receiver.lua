-- wrk load for the webhook receiver: realistic ~1 KB Evolution v2
-- `messages.upsert` bodies, rotating over N known instances `inst-00000` … .
--
--   wrk -t1 -c32 -d5s -s benches/receiver.lua http://127.0.0.1:PORT -- TOKEN N [PROVIDER]
--
-- `cargo bench --bench bench -- receiver` runs it against the daemon and a bare
-- axum handler, alternating (and skips it with a message when wrk is missing).

local token, count, provider = "hooktoken", 1000, "evo"
local requests = {}
local i = 0

local template = [[{"event":"messages.upsert","instance":"%s","data":{"key":{"remoteJid":"5511976543210@s.whatsapp.net","fromMe":false,"id":"3EB0%016X"},"pushName":"Maria Souza","status":"DELIVERY_ACK","message":{"conversation":"Oi, vocês abrem amanhã?","messageContextInfo":{"deviceListMetadata":{"senderKeyHash":"kS2bX1y0Qp3Zr4Tw","senderTimestamp":"1761140512","recipientKeyHash":"Yq8vN2m1Lk0Jh3Gf","recipientTimestamp":"1761139021"},"deviceListMetadataVersion":2,"messageSecret":"b2Y1dGhpc2lzYWZha2VzZWNyZXRmb3J0ZXN0cw=="}},"contextInfo":null,"messageType":"conversation","messageTimestamp":1761141807,"instanceId":"4f1c2a8e-9b3d-4e6a-8c71-2d5e9f0a1b37","source":"android"},"destination":"https://supervisor.example.com/hooks/evolution","date_time":"2025-10-22T14:03:27.901Z","sender":"5511987654321@s.whatsapp.net","server_url":"https://evo.example.com","apikey":null}]]

function init(args)
   token = args[1] or token
   count = tonumber(args[2] or count)
   provider = args[3] or provider
   local path = "/webhooks/" .. provider .. "/" .. token
   local headers = { ["Content-Type"] = "application/json" }
   for n = 0, count - 1 do
      local body = string.format(template, string.format("inst-%05d", n), n)
      requests[n + 1] = wrk.format("POST", path, headers, body)
   end
end

function request()
   i = i % count + 1
   return requests[i]
end

-- Any non-2xx answer is reported on stderr (wrk counts them too) so a run
-- that "wins" by failing is visible.
local bad = 0
function response(status, headers, body)
   if status < 200 or status > 299 then
      bad = bad + 1
      if bad <= 3 then io.stderr:write("non-2xx: " .. status .. " " .. body .. "\n") end
   end
end
