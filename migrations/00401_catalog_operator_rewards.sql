-- +goose Up
-- Rewards the operator owns (partner_id NULL), their images, and the trail
-- of what staff changed on a reward (stock, vouchers, moderation, retiring).

-- An operator reward has no partner; its orders neither. The composite
-- foreign key of 00100 is not checked when partner_id is NULL, so orders get
-- a plain one on reward_id too.
ALTER TABLE catalog_rewards ALTER COLUMN partner_id DROP NOT NULL;
ALTER TABLE catalog_orders ALTER COLUMN partner_id DROP NOT NULL;
ALTER TABLE catalog_orders ADD CONSTRAINT catalog_orders_reward FOREIGN KEY (reward_id) REFERENCES catalog_rewards (id);
CREATE INDEX catalog_rewards_operator ON catalog_rewards (id) WHERE partner_id IS NULL;

-- Retired rewards are inactive for good: never orderable, never edited.
-- moderation_reason is the operator's last word on a hidden or suspended
-- (rejected) reward, shown to its partner.
ALTER TABLE catalog_rewards
    ADD COLUMN retired_at timestamptz,
    ADD COLUMN moderation_reason text NOT NULL DEFAULT '' CHECK (length(moderation_reason) <= 500),
    ADD CONSTRAINT catalog_rewards_retired CHECK (retired_at IS NULL OR status = 'inactive');

-- One image per reward, in the database (no shared disk between hub
-- processes). Type and size are checked by the catalog before it is stored.
CREATE TABLE catalog_reward_images (
    reward_id    bigint      PRIMARY KEY REFERENCES catalog_rewards (id),
    content_type text        NOT NULL CHECK (content_type IN ('image/png', 'image/jpeg', 'image/webp', 'image/gif')),
    data         bytea       NOT NULL CHECK (length(data) BETWEEN 1 AND 1048576),
    sha256       text        NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    uploaded_at  timestamptz NOT NULL
);

-- What staff did to a reward, oldest first. Stock changes carry the change
-- and the stock left after it; voucher uploads carry counts, never codes.
CREATE TABLE catalog_reward_events (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    reward_id     bigint      NOT NULL REFERENCES catalog_rewards (id),
    kind          text        NOT NULL CHECK (kind IN ('created', 'updated', 'stock_set', 'stock_adjusted',
                                  'vouchers_uploaded', 'moderated', 'retired', 'image_set')),
    actor         text        NOT NULL CHECK (length(actor) BETWEEN 1 AND 200),
    stock_delta   bigint,
    stock_after   bigint      CHECK (stock_after >= 0),
    reason        text        NOT NULL DEFAULT '' CHECK (length(reason) <= 500),
    detail        jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(detail) = 'object'),
    at            timestamptz NOT NULL
);
CREATE INDEX catalog_reward_events_reward ON catalog_reward_events (reward_id, id);

-- +goose Down
DROP TABLE catalog_reward_events;
DROP TABLE catalog_reward_images;
ALTER TABLE catalog_rewards
    DROP CONSTRAINT catalog_rewards_retired,
    DROP COLUMN moderation_reason,
    DROP COLUMN retired_at;
DROP INDEX catalog_rewards_operator;
ALTER TABLE catalog_orders DROP CONSTRAINT catalog_orders_reward;
ALTER TABLE catalog_orders ALTER COLUMN partner_id SET NOT NULL;
ALTER TABLE catalog_rewards ALTER COLUMN partner_id SET NOT NULL;
