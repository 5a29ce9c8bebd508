-- Who is kept out of a case (security review of issue 13): staff a complaint names (triage) and
-- staff the station's leader excluded, from the internal case-access topic. Notify tells none of
-- them about the case (console notices, urgent SMS), whatever the event says.
CREATE TABLE case_exclusions (
    tracking_no text NOT NULL,
    staff_id    text NOT NULL,
    added_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tracking_no, staff_id)
);
