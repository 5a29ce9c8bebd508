-- When the reported matter happened (or, for other systems, when they sent it), as given.
ALTER TABLE submissions ADD COLUMN occurred_at timestamptz;
