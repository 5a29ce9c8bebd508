-- One survey answer per resolution (回访 after each 办结), not per item: a case resolved again after
-- a reopening is asked again. Answers given before this were about the first resolution.
ALTER TABLE survey_answers ADD COLUMN resolution integer NOT NULL DEFAULT 1 CHECK (resolution >= 1);
ALTER TABLE survey_answers DROP CONSTRAINT survey_answers_pkey;
ALTER TABLE survey_answers ADD PRIMARY KEY (tracking_no, resolution);
