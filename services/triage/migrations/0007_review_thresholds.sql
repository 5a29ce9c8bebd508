-- Below which confidence a classification goes to the duty leader's review queue (请核对分类,
-- issue 14): '*' for every station, a station's own row wins. 0 turns the review off.
CREATE TABLE review_thresholds (
    station        text PRIMARY KEY,
    type_below     real NOT NULL CHECK (type_below >= 0 AND type_below <= 1),
    category_below real NOT NULL CHECK (category_below >= 0 AND category_below <= 1)
);
INSERT INTO review_thresholds (station, type_below, category_below) VALUES ('*', 0.40, 0.30);
