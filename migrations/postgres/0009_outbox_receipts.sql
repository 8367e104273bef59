-- What a `whatsapp` notifier recorded about its sends of each outbox row, as
-- JSON text keyed by recipient: the provider's message id once the provider
-- took the message, or since when a send is on its way whose answer has not
-- come back (checked with the provider before anything is sent again). NULL
-- for the other channels. A row a `whatsapp` notifier could not deliver is
-- settled with status 'handed_over' (last_error says to which fallback and
-- why) and the fallback gets its own row with the same dedup key.
-- Kept column-for-column identical to migrations/sqlite.
ALTER TABLE outbox ADD COLUMN receipts TEXT;
