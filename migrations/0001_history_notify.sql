-- Live follow of session timelines (GET /v1/sessions/{id}/events?follow=1): every persisted event and every
-- transition to 'closed' announces itself on channel 'session_events' as '<session_id>:<seq>' or
-- '<session_id>:closed'. The payload is only a wake-up: listeners read the rows themselves (seq > last sent).
-- Portable: PostgreSQL 11+ syntax (EXECUTE FUNCTION), works in PGlite.
CREATE OR REPLACE FUNCTION parley_notify_session_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('session_events', NEW.session_id::text || ':' || NEW.seq::text);
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER session_events_notify AFTER INSERT ON session_events
  FOR EACH ROW EXECUTE FUNCTION parley_notify_session_event();
--> statement-breakpoint
CREATE OR REPLACE FUNCTION parley_notify_session_closed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('session_events', NEW.id::text || ':closed');
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER sessions_notify_closed AFTER UPDATE OF state ON sessions
  FOR EACH ROW WHEN (NEW.state = 'closed' AND OLD.state IS DISTINCT FROM NEW.state)
  EXECUTE FUNCTION parley_notify_session_closed();
