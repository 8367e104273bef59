-- Provider-level health (issue 14): silence, the remediation hook, versions.
-- Provider outages now have causes provider_unreachable, provider_unlicensed
-- and provider_silent (outages.cause); their remediation runs are counted in
-- outages.restart_attempts and exhaustion in outages.exhausted_notified.
-- Kept column-for-column identical to migrations/postgres.

-- A silence is measured from no earlier than this (set when the provider
-- answers again after an unreachable outage).
ALTER TABLE provider_state ADD COLUMN quiet_since BIGINT;
-- The last remediation run: when it started (committed before it runs, so a
-- crash never runs it twice inside the cooldown), the command, and its result
-- (NULL while it runs, or if the process died before it finished).
ALTER TABLE provider_state ADD COLUMN remediation_at BIGINT;
ALTER TABLE provider_state ADD COLUMN remediation_command TEXT;
ALTER TABLE provider_state ADD COLUMN remediation_result TEXT;
-- The version the provider last reported (Evolution GET / version, WAHA
-- /api/server/version).
ALTER TABLE provider_state ADD COLUMN version TEXT;
