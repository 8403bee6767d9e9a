"""The database tables, as SQLAlchemy Core metadata.

Column names are those of Aphex's own migration (`organization_id`, `draft_data`, `published_data`, ...),
so rows from an Aphex database load unchanged. This metadata is what `alembic check` compares against
the live database; the runtime SQL itself goes through asyncpg.

Constraint names follow one convention, so a constraint name in an asyncpg error maps to a clear message
(see `server/db/pool.py`).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Enum,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TIMESTAMP, UUID

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# The tables whose rows belong to one organization and that Row-Level Security guards.
RLS_TABLES = (
    "cms_documents",
    "cms_document_versions",
    "cms_assets",
    "cms_document_references",
    "cms_asset_references",
    "cms_document_schedules",
    "cms_webhooks",
    "cms_outbox",
    "cms_webhook_deliveries",
)

document_status = Enum("draft", "published", "unpublished", name="document_status")
version_event = Enum("draft", "publish", "restore", name="version_event")
schema_type_kind = Enum("document", "object", name="schema_type")


def _id() -> Column[object]:
    return Column(
        "id", UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")
    )


def _timestamp(name: str, *, nullable: bool = False) -> Column[object]:
    return Column(name, TIMESTAMP(timezone=True), nullable=nullable, server_default=text("now()"))


def _org(*, nullable: bool = False) -> Column[object]:
    return Column(
        "organization_id",
        UUID(as_uuid=True),
        ForeignKey("cms_organizations.id", ondelete="CASCADE"),
        nullable=nullable,
    )


organizations = Table(
    "cms_organizations",
    metadata,
    _id(),
    Column("name", String(200), nullable=False),
    Column("slug", String(100), nullable=False),
    Column(
        "parent_organization_id",
        UUID(as_uuid=True),
        ForeignKey("cms_organizations.id", ondelete="SET NULL"),
    ),
    Column("metadata", JSONB),
    Column("created_by", Text, nullable=False),
    _timestamp("created_at"),
    _timestamp("updated_at"),
    CheckConstraint("parent_organization_id <> id", name="not_own_parent"),
    # Slugs are unique among siblings (roots among roots), so a clash never tells a tenant about
    # organizations outside its own (migration 0006).
    UniqueConstraint("parent_organization_id", "slug", postgresql_nulls_not_distinct=True),
    Index("idx_organizations_parent", "parent_organization_id"),
)

invitations = Table(
    "cms_invitations",
    metadata,
    _id(),
    _org(),
    Column("email", String(255), nullable=False),
    Column("role", Text, nullable=False),
    # Only a SHA-256 of the token is kept: a leaked table does not hand out memberships.
    Column("token_hash", Text, nullable=False, unique=True),
    Column("invited_by", Text, nullable=False),
    Column("expires_at", TIMESTAMP(timezone=True), nullable=False),
    Column("accepted_at", TIMESTAMP(timezone=True)),
    _timestamp("created_at"),
    Index("idx_invitations_email", "email"),
    Index("idx_invitations_org_id", "organization_id"),
)

organization_members = Table(
    "cms_organization_members",
    metadata,
    _id(),
    _org(),
    Column("user_id", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("preferences", JSONB),
    Column(
        "invitation_id", UUID(as_uuid=True), ForeignKey("cms_invitations.id", ondelete="SET NULL")
    ),
    _timestamp("created_at"),
    _timestamp("updated_at"),
    UniqueConstraint("organization_id", "user_id"),
    Index("idx_org_members_user_id", "user_id"),
)

organization_roles = Table(
    "cms_organization_roles",
    metadata,
    _id(),
    _org(),
    Column("name", String(100), nullable=False),
    Column("description", Text),
    Column("capabilities", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("is_built_in", Boolean, nullable=False, server_default=text("false")),
    _timestamp("created_at"),
    _timestamp("updated_at"),
    UniqueConstraint("organization_id", "name"),
)

user_sessions = Table(
    "cms_user_sessions",
    metadata,
    Column("user_id", Text, primary_key=True),
    Column(
        "active_organization_id",
        UUID(as_uuid=True),
        ForeignKey("cms_organizations.id", ondelete="SET NULL"),
    ),
    _timestamp("updated_at"),
)

user_profiles = Table(
    "cms_user_profiles",
    metadata,
    Column("user_id", Text, primary_key=True),
    Column("role", Text, nullable=False, server_default=text("'editor'")),
    Column("preferences", JSONB),
    _timestamp("created_at"),
    _timestamp("updated_at"),
    CheckConstraint("role IN ('super_admin', 'admin', 'editor', 'viewer')", name="role"),
)

instance_settings = Table(
    "cms_instance_settings",
    metadata,
    Column("id", Text, primary_key=True, server_default=text("'default'")),
    Column("settings", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    _timestamp("updated_at"),
)

# One counter of the changes to what a request's opening finds (credentials, memberships, roles,
# the organization tree), counted by triggers (migration 0015): a caller's facts kept by the
# server hold as long as it has not moved.
access_epoch = Table(
    "cms_access_epoch",
    metadata,
    Column("id", Boolean, primary_key=True, server_default=text("true")),
    Column("epoch", BigInteger, nullable=False, server_default=text("0")),
    CheckConstraint("id", name="one_row"),
)

schema_types = Table(
    "cms_schema_types",
    metadata,
    _id(),
    Column("name", String(100), nullable=False, unique=True),
    Column("title", String(200), nullable=False),
    Column("type", schema_type_kind, nullable=False),
    Column("description", Text),
    Column("fields", JSONB, nullable=False),
    # The rest of the type's JSON form (singleton, orderings, ...), beside the Aphex columns.
    Column("options", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    _timestamp("created_at"),
    _timestamp("updated_at"),
)

documents = Table(
    "cms_documents",
    metadata,
    _id(),
    _org(),
    Column("type", String(100), nullable=False),
    Column("status", document_status, nullable=False, server_default=text("'draft'")),
    Column("draft_data", JSONB),
    Column("published_data", JSONB),
    Column("published_hash", String(20)),
    # The content hash of draft_data, kept at every save, so "unpublished changes" is a comparison.
    Column("draft_hash", String(20)),
    # Bumped by every change of the draft: the compare-and-swap counter for `expected_revision`.
    Column("revision", Integer, nullable=False, server_default=text("1")),
    Column("created_by", Text),
    Column("updated_by", Text),
    Column("search_text", Text),
    Column("published_at", TIMESTAMP(timezone=True)),
    _timestamp("created_at"),
    _timestamp("updated_at"),
    Index("idx_documents_status", "status"),
    Index("idx_documents_published_at", "published_at"),
    # The paths of the default sort and of a published listing sorted by a datetime field: each
    # organization's own (a compiled list page, migration 0027), and every organization's in one
    # walk (the lists that are not compiled).
    Index(
        "idx_documents_org_type_updated_at",
        "organization_id",
        "type",
        text("updated_at DESC"),
        "id",
    ),
    Index(
        "idx_documents_org_published_date",
        "organization_id",
        "type",
        text("cms_to_timestamptz(published_data ->> 'publishedDate') DESC NULLS LAST"),
        "id",
        postgresql_where=text("status = 'published' AND published_data IS NOT NULL"),
    ),
    Index("idx_documents_type_updated_at", "type", text("updated_at DESC"), "id"),
    Index(
        "idx_documents_published_date",
        "type",
        text("cms_to_timestamptz(published_data ->> 'publishedDate') DESC NULLS LAST"),
        "id",
        postgresql_where=text("status = 'published' AND published_data IS NOT NULL"),
    ),
)

document_versions = Table(
    "cms_document_versions",
    metadata,
    _id(),
    Column(
        "document_id",
        UUID(as_uuid=True),
        ForeignKey("cms_documents.id", ondelete="CASCADE"),
        nullable=False,
    ),
    _org(),
    Column("version_number", Integer, nullable=False),
    Column("event_type", version_event, nullable=False),
    Column("data", JSONB, nullable=False),
    Column("created_by", Text),
    _timestamp("created_at"),
    # A restore version names the version it made the draft again.
    Column("restored_from", Integer),
    UniqueConstraint("document_id", "version_number"),
    # The drafts alone, for the retention's prune on every draft save (migration 0019).
    Index(
        "idx_document_versions_drafts",
        "document_id",
        "version_number",
        postgresql_where=text("event_type = 'draft'"),
    ),
)

assets = Table(
    "cms_assets",
    metadata,
    _id(),
    _org(),
    Column("asset_type", String(20), nullable=False),
    Column("filename", String(255), nullable=False),
    Column("original_filename", String(255), nullable=False),
    Column("mime_type", String(100), nullable=False),
    Column("size", Integer, nullable=False),
    Column("url", Text, nullable=False),
    Column("path", Text, nullable=False),
    Column("storage_adapter", String(50), nullable=False, server_default=text("'local'")),
    Column("width", Integer),
    Column("height", Integer),
    Column("metadata", JSONB),
    Column("title", String(255)),
    Column("description", Text),
    Column("alt", Text),
    Column("credit_line", Text),
    Column("created_by", Text),
    Column("updated_by", Text),
    _timestamp("created_at"),
    _timestamp("updated_at"),
    CheckConstraint("asset_type IN ('image', 'file')", name="asset_type"),
    Index("idx_assets_org_id", "organization_id", "created_at"),
)

# Which document references which, per plane (draft / published): back-references and the
# "who uses this document" question without scanning JSON.
document_references = Table(
    "cms_document_references",
    metadata,
    Column(
        "referencer_id",
        UUID(as_uuid=True),
        ForeignKey("cms_documents.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column(
        "ref_id",
        UUID(as_uuid=True),
        ForeignKey("cms_documents.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("plane", String(16), nullable=False),
    _org(),
    _timestamp("created_at"),
    PrimaryKeyConstraint("referencer_id", "plane", "ref_id"),
    CheckConstraint("plane IN ('draft', 'published')", name="plane"),
    Index("idx_doc_refs_ref_id", "ref_id", "organization_id"),
)

# A publish or unpublish of a document at a time (`server/content/schedules.py`). No foreign key to the
# document: a schedule outlives a deleted document, to record that it failed and why.
document_schedules = Table(
    "cms_document_schedules",
    metadata,
    _id(),
    _org(),
    Column("document_id", UUID(as_uuid=True), nullable=False),
    Column("document_type", String(100), nullable=False),
    Column("action", String(16), nullable=False),
    Column("run_at", TIMESTAMP(timezone=True), nullable=False),
    # A publish's draft revision, pinned when it was scheduled; NULL for an unpublish.
    Column("revision", Integer),
    Column("status", String(16), nullable=False, server_default=text("'pending'")),
    # Failures the runner may retry (a lock wait, a lost connection) come back at `retry_at`.
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("retry_at", TIMESTAMP(timezone=True)),
    Column("error_code", String(40)),
    Column("error_message", Text),
    Column("created_by", Text),
    Column("cancelled_by", Text),
    _timestamp("created_at"),
    _timestamp("updated_at"),
    Column("completed_at", TIMESTAMP(timezone=True)),
    CheckConstraint("action IN ('publish', 'unpublish')", name="action"),
    CheckConstraint("status IN ('pending', 'succeeded', 'failed', 'cancelled')", name="status"),
    # The runner's claim: pending schedules by when they are due.
    Index(
        "idx_document_schedules_due",
        text("coalesce(retry_at, run_at)"),
        postgresql_where=text("status = 'pending'"),
    ),
    Index("idx_document_schedules_document", "document_id", "run_at"),
    Index("idx_document_schedules_org", "organization_id", "run_at"),
)

# Which document uses which asset, at which field path and plane: the asset reference count.
asset_references = Table(
    "cms_asset_references",
    metadata,
    Column(
        "document_id",
        UUID(as_uuid=True),
        ForeignKey("cms_documents.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("plane", String(16), nullable=False),
    Column("field_path", Text, nullable=False),
    Column(
        "asset_id",
        UUID(as_uuid=True),
        ForeignKey("cms_assets.id", ondelete="CASCADE"),
        nullable=False,
    ),
    _org(),
    Column("document_type", String(100), nullable=False),
    _timestamp("created_at"),
    PrimaryKeyConstraint("document_id", "plane", "field_path"),
    CheckConstraint("plane IN ('draft', 'published')", name="plane"),
    Index("idx_asset_references_asset", "asset_id", "organization_id"),
)

# Authentication: users, their sign-in sessions and accounts, and API keys. Secrets are stored hashed.
users = Table(
    "users",
    metadata,
    Column("id", Text, primary_key=True, server_default=text("(gen_random_uuid())::text")),
    Column("name", Text, nullable=False),
    Column("email", Text, nullable=False),
    Column("email_verified", Boolean, nullable=False, server_default=text("false")),
    Column("image", Text),
    _timestamp("created_at"),
    _timestamp("updated_at"),
    Index("uq_users_email_lower", text("lower(email)"), unique=True),
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", Text, primary_key=True, server_default=text("(gen_random_uuid())::text")),
    Column("user_id", Text, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("provider_id", Text, nullable=False),
    Column("account_id", Text, nullable=False),
    Column("password_hash", Text),
    Column("access_token", Text),
    Column("refresh_token", Text),
    Column("scope", Text),
    _timestamp("created_at"),
    _timestamp("updated_at"),
    UniqueConstraint("provider_id", "account_id"),
    Index("idx_accounts_user_id", "user_id"),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", Text, primary_key=True, server_default=text("(gen_random_uuid())::text")),
    Column("user_id", Text, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("token_hash", Text, nullable=False, unique=True),
    Column("expires_at", TIMESTAMP(timezone=True), nullable=False),
    Column("ip_address", Text),
    Column("user_agent", Text),
    _timestamp("created_at"),
    _timestamp("updated_at"),
    Index("idx_sessions_user_id", "user_id"),
)

api_keys = Table(
    "api_keys",
    metadata,
    _id(),
    Column("name", Text, nullable=False),
    # The first characters of the key, shown in listings so people can tell keys apart.
    Column("prefix", String(16), nullable=False),
    Column("key_hash", Text, nullable=False, unique=True),
    _org(),
    Column("role", Text),
    Column("capabilities", JSONB),
    Column("published_only", Boolean, nullable=False, server_default=text("false")),
    Column("instance_admin", Boolean, nullable=False, server_default=text("false")),
    Column("created_by", Text),
    Column("expires_at", TIMESTAMP(timezone=True)),
    Column("revoked_at", TIMESTAMP(timezone=True)),
    Column("last_used_at", TIMESTAMP(timezone=True)),
    _timestamp("created_at"),
    Index("idx_api_keys_org_id", "organization_id"),
)

# Content delivery (`docs/delivery.md`): operations registered ahead of time, the webhooks of an
# organization, the outbox its document changes write in their own statement, and the deliveries.
persisted_queries = Table(
    "cms_persisted_queries",
    metadata,
    # The SHA-256 of the document's text, in hex: what clients send as `sha256Hash`.
    Column("hash", String(64), primary_key=True),
    Column("query", Text, nullable=False),
    Column("created_by", Text),
    _timestamp("created_at"),
)

webhooks = Table(
    "cms_webhooks",
    metadata,
    _id(),
    _org(),
    Column("name", Text, nullable=False),
    Column("url", Text, nullable=False),
    Column("events", ARRAY(Text), nullable=False),
    # None: every document type.
    Column("document_types", ARRAY(Text)),
    # The signing key (`whsec_...`); only the creation's response shows it.
    Column("secret", Text, nullable=False),
    Column("enabled", Boolean, nullable=False, server_default=text("true")),
    Column("created_by", Text),
    _timestamp("created_at"),
    _timestamp("updated_at"),
    Index("idx_webhooks_org", "organization_id"),
)

outbox = Table(
    "cms_outbox",
    metadata,
    # Assigned while the document's row is locked, so one document's events are in this order.
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    _org(),
    # No foreign key: a `document.deleted` event outlives its document.
    Column("document_id", UUID(as_uuid=True), nullable=False),
    Column("document_type", String(100), nullable=False),
    Column("event", String(40), nullable=False),
    _timestamp("occurred_at"),
)

webhook_deliveries = Table(
    "cms_webhook_deliveries",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column(
        "webhook_id",
        UUID(as_uuid=True),
        ForeignKey("cms_webhooks.id", ondelete="CASCADE"),
        nullable=False,
    ),
    _org(),
    # The outbox event's id: `webhook-id` is `msg_<event_id>`, the same on every attempt.
    Column("event_id", BigInteger, nullable=False),
    Column("event", String(40), nullable=False),
    Column("document_id", UUID(as_uuid=True), nullable=False),
    Column("payload", Text, nullable=False),
    Column("state", String(16), nullable=False, server_default=text("'pending'")),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column(
        "next_attempt_at", TIMESTAMP(timezone=True), nullable=False, server_default=text("now()")
    ),
    # Set while a process sends it; another process may take it over once this has passed.
    Column("lease_until", TIMESTAMP(timezone=True)),
    Column("last_status", Integer),
    Column("last_error", Text),
    _timestamp("created_at"),
    Column("delivered_at", TIMESTAMP(timezone=True)),
    CheckConstraint("state IN ('pending', 'delivered', 'failed')", name="state"),
    Index("idx_webhook_deliveries_log", "webhook_id", text("id DESC")),
    Index(
        "idx_webhook_deliveries_pending",
        "webhook_id",
        "document_id",
        "id",
        postgresql_where=text("state = 'pending'"),
    ),
    Index(
        "idx_webhook_deliveries_due",
        "next_attempt_at",
        postgresql_where=text("state = 'pending'"),
    ),
)
