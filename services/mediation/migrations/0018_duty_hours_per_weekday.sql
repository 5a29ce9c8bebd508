-- Duty hours per weekday and on holidays (issue 15), for the acceptance clock. `starts`/`ends`
-- stay the default range of every day; `schedule` holds the exceptions as the station API takes
-- them: {"weekdays": {"6": {"starts": "09:00", "ends": "12:00"}, "7": "off"}, "holidays": "off"}
-- (a weekday not listed: the default range; no "holidays": days off follow their weekday).
ALTER TABLE station_duty_hours ADD COLUMN schedule jsonb NOT NULL DEFAULT '{}';
