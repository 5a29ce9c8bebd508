-- The citizen's answer to the return-visit survey (回访): one per item.
CREATE TABLE survey_answers (
    tracking_no text PRIMARY KEY REFERENCES submissions (tracking_no),
    result      text NOT NULL CHECK (result IN ('satisfied', 'basically_satisfied', 'dissatisfied')),
    reason      text,
    answered_at timestamptz NOT NULL DEFAULT now()
);
