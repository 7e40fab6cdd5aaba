"""Workers: lease due work in Postgres, run its pipeline, record every step as events."""
