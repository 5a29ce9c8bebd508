-- A station's own phone number (issue 13): messages to citizens give it instead of 110. In every
-- service's copy of the directory, so it is a platform migration (the read model is shared).
ALTER TABLE stations ADD COLUMN phone text;
