-- The embedded file's schema as the hand-written DDL made it before the declaration
-- (broker.store.schema), frozen: tests/store/test_schema_drift.py opens a file made by it.
CREATE TABLE IF NOT EXISTS ephemeral (
  ns TEXT NOT NULL,
  k TEXT NOT NULL,
  v TEXT NOT NULL,
  expires REAL NOT NULL,
  UNIQUE (ns, k)
);
CREATE INDEX IF NOT EXISTS ephemeral_expires ON ephemeral(expires);
CREATE TABLE IF NOT EXISTS audit (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  at TEXT NOT NULL,
  kind TEXT NOT NULL,
  data TEXT NOT NULL,
  prev TEXT NOT NULL,
  hash TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
CREATE TABLE IF NOT EXISTS outbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  channel TEXT NOT NULL CHECK (channel IN ('email', 'pec', 'sms', 'letter')),
  recipient TEXT NOT NULL,
  template TEXT NOT NULL,
  params TEXT NOT NULL,
  sealed BLOB,
  fiscal_code TEXT,
  reference TEXT,
  status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at TEXT NOT NULL,
  last_error TEXT,
  created_at TEXT NOT NULL,
  sent_at TEXT
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox(status, next_attempt_at);
CREATE INDEX IF NOT EXISTS outbox_person ON outbox(fiscal_code);
CREATE INDEX IF NOT EXISTS outbox_reference ON outbox(reference);
CREATE TABLE IF NOT EXISTS pin_person (
  fiscal_code TEXT PRIMARY KEY,
  given_name TEXT,
  family_name TEXT,
  email TEXT,
  mobile_phone TEXT,
  pec TEXT,
  residence TEXT CHECK (residence IN ('italy', 'abroad')),
  italian_document INTEGER NOT NULL DEFAULT 0 CHECK (italian_document IN (0, 1)),
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pin_credential (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  fiscal_code TEXT NOT NULL REFERENCES pin_person(fiscal_code),
  kind TEXT NOT NULL CHECK (kind IN ('initial16', 'standard8', 'telephone')),
  channel TEXT NOT NULL GENERATED ALWAYS AS
    (CASE kind WHEN 'telephone' THEN 'telephone' ELSE 'web' END) VIRTUAL,
  privilege TEXT NOT NULL CHECK (privilege IN ('ordinario', 'dispositivo')),
  pin_hash TEXT NOT NULL CHECK (pin_hash LIKE '$argon2id$%'),
  status TEXT NOT NULL CHECK (status IN ('pending', 'active', 'replaced', 'revoked')),
  practice_number TEXT,
  issued_at TEXT NOT NULL,
  changed_at TEXT NOT NULL,
  expires_at TEXT NOT NULL,
  ended_at TEXT,
  end_reason TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS pin_credential_one_active
  ON pin_credential(fiscal_code, channel) WHERE status = 'active';
CREATE INDEX IF NOT EXISTS pin_credential_practice ON pin_credential(practice_number);
CREATE TABLE IF NOT EXISTS pin_attempts (
  fiscal_code TEXT PRIMARY KEY,
  failed_count INTEGER NOT NULL DEFAULT 0,
  locked_until TEXT,
  updated_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pin_practice (
  practice_number TEXT PRIMARY KEY,
  fiscal_code TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('request', 'renewal', 'recovery', 'reissue')),
  first_half_channel TEXT NOT NULL CHECK (first_half_channel IN ('sms', 'email', 'pec')),
  address TEXT NOT NULL,
  health_card_digest TEXT,
  health_card_expiry TEXT,
  created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS pin_practice_person ON pin_practice(fiscal_code);
CREATE TABLE IF NOT EXISTS pin_half (
  credential_id INTEGER PRIMARY KEY REFERENCES pin_credential(id),
  first_half_hash TEXT NOT NULL CHECK (first_half_hash LIKE '$argon2id$%')
);
CREATE TABLE IF NOT EXISTS pin_conversion (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  fiscal_code TEXT NOT NULL,
  practice_number TEXT,
  status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
  form_file TEXT NOT NULL,
  form_type TEXT NOT NULL,
  document_file TEXT NOT NULL,
  document_type TEXT NOT NULL,
  submitted_at TEXT NOT NULL,
  decided_at TEXT,
  operator TEXT,
  reason TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS pin_conversion_one_pending
  ON pin_conversion(fiscal_code) WHERE status = 'pending';
CREATE TABLE IF NOT EXISTS pin_event (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  fiscal_code TEXT NOT NULL,
  practice_number TEXT,
  at TEXT NOT NULL,
  kind TEXT NOT NULL,
  actor TEXT NOT NULL,
  reason TEXT
);
CREATE INDEX IF NOT EXISTS pin_event_person ON pin_event(fiscal_code);
CREATE TABLE IF NOT EXISTS dir_comune (
  code TEXT PRIMARY KEY, name TEXT NOT NULL,
  conv_from TEXT, conv_until TEXT, conv_status TEXT
);
CREATE TABLE IF NOT EXISTS dir_delega (
  cf TEXT NOT NULL, kind TEXT NOT NULL, company_cf TEXT NOT NULL, company_name TEXT,
  valid_from TEXT NOT NULL, valid_until TEXT, form TEXT NOT NULL,
  PRIMARY KEY (cf, kind, company_cf)
);
CREATE TABLE IF NOT EXISTS dir_operator (
  cf TEXT NOT NULL, comune TEXT NOT NULL REFERENCES dir_comune(code), service TEXT NOT NULL,
  PRIMARY KEY (cf, comune, service)
);
CREATE TABLE IF NOT EXISTS dir_operator_meta (
  cf TEXT NOT NULL, comune TEXT NOT NULL, granted_at TEXT NOT NULL,
  granted_by TEXT NOT NULL, reason TEXT NOT NULL, PRIMARY KEY (cf, comune)
);
CREATE TABLE IF NOT EXISTS dir_delegation (
  delegator_cf TEXT NOT NULL, delegate_cf TEXT NOT NULL, valid_from TEXT NOT NULL,
  valid_until TEXT, scope TEXT NOT NULL, circular TEXT NOT NULL,
  PRIMARY KEY (delegator_cf, delegate_cf)
);
CREATE INDEX IF NOT EXISTS dir_delegation_delegate ON dir_delegation(delegate_cf);
CREATE TABLE IF NOT EXISTS logout_watch (
  psid TEXT PRIMARY KEY,
  expires_at REAL NOT NULL,
  clients TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS logout_watch_expires ON logout_watch(expires_at);
CREATE TRIGGER IF NOT EXISTS dir_excl_isee_consultazione BEFORE INSERT ON dir_operator
WHEN NEW.service = 'isee.consultazione' AND EXISTS (SELECT 1 FROM dir_operator
  WHERE cf = NEW.cf AND comune = NEW.comune AND service = 'isee.acquisizione')
BEGIN SELECT RAISE(ABORT, 'exclusive abilitazioni: isee.consultazione / isee.acquisizione'); END;

CREATE TRIGGER IF NOT EXISTS dir_excl_isee_acquisizione BEFORE INSERT ON dir_operator
WHEN NEW.service = 'isee.acquisizione' AND EXISTS (SELECT 1 FROM dir_operator
  WHERE cf = NEW.cf AND comune = NEW.comune AND service = 'isee.consultazione')
BEGIN SELECT RAISE(ABORT, 'exclusive abilitazioni: isee.acquisizione / isee.consultazione'); END;

CREATE TRIGGER IF NOT EXISTS dir_excl_prestazioni_sociali_consultazione BEFORE INSERT ON dir_operator
WHEN NEW.service = 'prestazioni_sociali.consultazione' AND EXISTS (SELECT 1 FROM dir_operator
  WHERE cf = NEW.cf AND comune = NEW.comune AND service = 'prestazioni_sociali.acquisizione')
BEGIN SELECT RAISE(ABORT, 'exclusive abilitazioni: prestazioni_sociali.consultazione / prestazioni_sociali.acquisizione'); END;

CREATE TRIGGER IF NOT EXISTS dir_excl_prestazioni_sociali_acquisizione BEFORE INSERT ON dir_operator
WHEN NEW.service = 'prestazioni_sociali.acquisizione' AND EXISTS (SELECT 1 FROM dir_operator
  WHERE cf = NEW.cf AND comune = NEW.comune AND service = 'prestazioni_sociali.consultazione')
BEGIN SELECT RAISE(ABORT, 'exclusive abilitazioni: prestazioni_sociali.acquisizione / prestazioni_sociali.consultazione'); END;
