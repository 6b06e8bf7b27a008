-- +goose Up
-- One-time links the hub emails to members (package members): sign-up
-- verification, claiming an account, password reset. Only the SHA-256 of the
-- link's secret is kept. A link is used once (used_at) and expires
-- (expires_at); a newer link of the same account, or a password set through
-- any of them, revokes the others (revoked_at). A sign-up link names no
-- member yet: the member is made when the link is used, from signup.
CREATE TABLE member_links (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    purpose     text        NOT NULL CHECK (purpose IN ('signup', 'claim', 'reset')),
    token_hash  bytea       NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    member_id   bigint      REFERENCES members (id),
    email       text        NOT NULL CHECK (email = lower(email) AND email LIKE '_%@_%.__%'),
    signup      jsonb,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL CHECK (expires_at > created_at),
    used_at     timestamptz,
    revoked_at  timestamptz,
    CHECK ((purpose = 'signup') = (member_id IS NULL)),
    CHECK ((purpose = 'signup') = (signup IS NOT NULL))
);
CREATE INDEX member_links_member ON member_links (member_id) WHERE member_id IS NOT NULL;
CREATE INDEX member_links_email ON member_links (email);
-- Claim and sign-up find a member by the contact email a partner enrolled
-- (not every such email is an identifier).
CREATE INDEX members_email ON members (email) WHERE email IS NOT NULL;

-- +goose Down
DROP INDEX members_email;
DROP TABLE member_links;
