"""Indexes, and columns on stage transitions that the funnel reports would otherwise compute.

On PostgreSQL, ``leads_stagetransition`` gets (outside the Django model):

- ``lead_source``, ``lead_channel``, ``lead_utm_campaign``, ``lead_first_form_id``: a copy of the
  lead's attribution. A BEFORE INSERT trigger copies it from the lead (ORM inserts,
  ``bulk_create`` and ``COPY`` alike) and an AFTER UPDATE trigger on ``leads_lead`` rewrites it
  when the lead's own columns change, so it always equals the lead's current attribution.
- ``left_at``: when the lead left the stage this transition entered, i.e. the time of the lead's
  next transition in (at, id) order (null while the lead is still there). The same BEFORE INSERT
  trigger sets it on the new row and on the row before it.

A covering index on ``at`` holds every column the period reports read, so a month of history is
read from the index alone, without joining the leads table or a window over each lead's history.
Other databases compute the same from the leads table and the history (see ``leads.analytics``).
"""

from django.db import migrations, models, transaction

FORWARD = """
-- Check the deferred foreign keys as the backfill goes, so no trigger event is pending when the
-- index is built in the same transaction.
SET CONSTRAINTS ALL IMMEDIATE;

ALTER TABLE leads_stagetransition
    ADD COLUMN IF NOT EXISTS lead_source varchar(100) NOT NULL DEFAULT '',
    ADD COLUMN IF NOT EXISTS lead_channel varchar(20) NOT NULL DEFAULT '',
    ADD COLUMN IF NOT EXISTS lead_utm_campaign varchar(200) NOT NULL DEFAULT '',
    ADD COLUMN IF NOT EXISTS lead_first_form_id bigint NULL,
    ADD COLUMN IF NOT EXISTS left_at timestamptz NULL;

UPDATE leads_stagetransition st
   SET lead_source = n.source, lead_channel = n.channel, lead_utm_campaign = n.utm_campaign,
       lead_first_form_id = n.first_form_id, left_at = n.left_at
  FROM (SELECT t.id, l.source, l.channel, l.utm_campaign, l.first_form_id,
               LEAD(t.at) OVER (PARTITION BY t.lead_id ORDER BY t.at, t.id) AS left_at
          FROM leads_stagetransition t JOIN leads_lead l ON l.id = t.lead_id) n
 WHERE n.id = st.id;

CREATE OR REPLACE FUNCTION leads_transition_copy_attribution() RETURNS trigger AS $$
BEGIN
    SELECT l.source, l.channel, l.utm_campaign, l.first_form_id
      INTO NEW.lead_source, NEW.lead_channel, NEW.lead_utm_campaign, NEW.lead_first_form_id
      FROM leads_lead l
     WHERE l.id = NEW.lead_id;
    NEW.lead_source := COALESCE(NEW.lead_source, '');
    NEW.lead_channel := COALESCE(NEW.lead_channel, '');
    NEW.lead_utm_campaign := COALESCE(NEW.lead_utm_campaign, '');
    -- The stay this transition starts ends at the lead's next transition (none, normally) ...
    SELECT MIN(st.at) INTO NEW.left_at
      FROM leads_stagetransition st
     WHERE st.lead_id = NEW.lead_id AND (st.at, st.id) > (NEW.at, NEW.id);
    -- ... and the stay of the transition before it ends now.
    UPDATE leads_stagetransition
       SET left_at = NEW.at
     WHERE id = (SELECT st.id FROM leads_stagetransition st
                  WHERE st.lead_id = NEW.lead_id AND (st.at, st.id) < (NEW.at, NEW.id)
                  ORDER BY st.at DESC, st.id DESC
                  LIMIT 1);
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS leads_transition_attribution ON leads_stagetransition;
CREATE TRIGGER leads_transition_attribution
    BEFORE INSERT ON leads_stagetransition
    FOR EACH ROW EXECUTE FUNCTION leads_transition_copy_attribution();

CREATE OR REPLACE FUNCTION leads_lead_attribution_changed() RETURNS trigger AS $$
BEGIN
    UPDATE leads_stagetransition
       SET lead_source = NEW.source, lead_channel = NEW.channel,
           lead_utm_campaign = NEW.utm_campaign, lead_first_form_id = NEW.first_form_id
     WHERE lead_id = NEW.id;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS leads_lead_attribution ON leads_lead;
CREATE TRIGGER leads_lead_attribution
    AFTER UPDATE OF source, channel, utm_campaign, first_form_id ON leads_lead
    FOR EACH ROW
    WHEN (OLD.source IS DISTINCT FROM NEW.source
          OR OLD.channel IS DISTINCT FROM NEW.channel
          OR OLD.utm_campaign IS DISTINCT FROM NEW.utm_campaign
          OR OLD.first_form_id IS DISTINCT FROM NEW.first_form_id)
    EXECUTE FUNCTION leads_lead_attribution_changed();

CREATE INDEX IF NOT EXISTS transition_at_cover_idx ON leads_stagetransition (at)
    INCLUDE (id, lead_id, cycle, to_stage, from_stage, reason_code, owner_id, left_at,
             lead_source, lead_channel, lead_utm_campaign, lead_first_form_id);
"""

BACKWARD = """
DROP INDEX IF EXISTS transition_at_cover_idx;
DROP TRIGGER IF EXISTS leads_lead_attribution ON leads_lead;
DROP FUNCTION IF EXISTS leads_lead_attribution_changed();
DROP TRIGGER IF EXISTS leads_transition_attribution ON leads_stagetransition;
DROP FUNCTION IF EXISTS leads_transition_copy_attribution();
ALTER TABLE leads_stagetransition
    DROP COLUMN IF EXISTS lead_source,
    DROP COLUMN IF EXISTS lead_channel,
    DROP COLUMN IF EXISTS lead_utm_campaign,
    DROP COLUMN IF EXISTS lead_first_form_id,
    DROP COLUMN IF EXISTS left_at;
"""


def forward(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        connection = schema_editor.connection
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute(FORWARD)
        with connection.cursor() as cursor:
            # The backfill rewrote every row: mark the pages all-visible again so the reports'
            # index-only scans do not visit the table.
            cursor.execute("VACUUM (ANALYZE) leads_stagetransition")


def backward(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD)


class Migration(migrations.Migration):
    # Not atomic: VACUUM cannot run in a transaction. The DDL and backfill commit together
    # (see ``forward``) and every statement is safe to run again.
    atomic = False

    dependencies = [
        ("leads", "0002_lead_search_trigram_indexes"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="lead",
            index=models.Index(fields=["assigned_at"], name="lead_assigned_at_idx"),
        ),
        migrations.RunPython(forward, backward),
    ]
