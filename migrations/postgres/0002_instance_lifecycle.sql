-- Instances have a lifecycle (SPEC §5 rule 14): a retired row keeps its history,
-- and a new instance under an old name gets a row of its own. So (provider, name)
-- is unique only among present instances, and the provider's own id of an
-- instance (Evolution's uuid) is kept to tell a recreated instance apart.
-- replaced_at: when the last fresh 440 close was seen (repeated-440 window).

ALTER TABLE instances DROP CONSTRAINT instances_provider_name_key;
CREATE UNIQUE INDEX instances_present_key ON instances (provider, name) WHERE present = TRUE;
CREATE INDEX instances_by_key ON instances (provider, name);
ALTER TABLE instances ADD COLUMN provider_id TEXT;
ALTER TABLE instances ADD COLUMN replaced_at BIGINT;
ALTER TABLE instances ADD COLUMN retired_at BIGINT;
