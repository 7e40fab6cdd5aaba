-- Issue 18: secrets are owned. A secret belongs to the agent that stored it (or the admin) and
-- is used only by its owner's runs and by the agents the admin shares it with ('*': every
-- agent). Maintained by projections/rules/secret.py.
--
-- Every secret stored before this change was stored by the admin and was usable by every
-- agent: those rows (and a rebuild from their events, which name no owner or agents) stay
-- owned by the admin and shared with every agent, so existing deployments keep working. The
-- admin narrows one by storing it again (same value) with "agents": [...] or [] for none.
ALTER TABLE secret
    ADD COLUMN owner  TEXT   NOT NULL DEFAULT 'admin',
    ADD COLUMN agents TEXT[] NOT NULL DEFAULT '{*}';
ALTER TABLE secret ALTER COLUMN owner DROP DEFAULT, ALTER COLUMN agents DROP DEFAULT;
