-- +goose Up
-- Notification mail to members (package members, members/notify.go).
--
-- member_mail_optouts: the kinds of notification a member turned off, by
-- the signed link at the foot of each mail or in the portal. A row means
-- "send none of this kind". Security notices have no kind here: they are
-- always sent.
CREATE TABLE member_mail_optouts (
    member_id  bigint      NOT NULL REFERENCES members (id),
    kind       text        NOT NULL CHECK (kind IN ('points_digest', 'points_expiring', 'orders', 'exchanges')),
    created_at timestamptz NOT NULL,
    PRIMARY KEY (member_id, kind)
);

-- member_digests: one row per member and UTC day whose earns were digested,
-- written in the transaction that queues the digest mail (mail_id, NULL when
-- the member's consent or opt-out sent none). The primary key makes the
-- daily job idempotent: a second run finds the row and sends nothing.
CREATE TABLE member_digests (
    member_id  bigint      NOT NULL REFERENCES members (id),
    day        date        NOT NULL,
    points     bigint      NOT NULL,
    earns      integer     NOT NULL CHECK (earns > 0),
    mail_id    bigint      REFERENCES outbound_mail (id),
    created_at timestamptz NOT NULL,
    PRIMARY KEY (member_id, day)
);

-- A change of sign-in email is a link too: sent to the new address (email),
-- it names the member, and the change applies when it is used.
ALTER TABLE member_links DROP CONSTRAINT member_links_purpose_check;
ALTER TABLE member_links ADD CONSTRAINT member_links_purpose_check
    CHECK (purpose IN ('signup', 'claim', 'reset', 'email_change'));

-- +goose Down
DELETE FROM member_links WHERE purpose = 'email_change';
ALTER TABLE member_links DROP CONSTRAINT member_links_purpose_check;
ALTER TABLE member_links ADD CONSTRAINT member_links_purpose_check
    CHECK (purpose IN ('signup', 'claim', 'reset'));
DROP TABLE member_digests;
DROP TABLE member_mail_optouts;
